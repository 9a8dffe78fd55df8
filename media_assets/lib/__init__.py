"""Pure logic, no Dagster: one package per domain (core, media, speech, text, distribution), each
holding its tools and one module per stage; `stages.py` lists the stages once."""
