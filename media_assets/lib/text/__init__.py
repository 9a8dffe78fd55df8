"""Text: topic segmentation, key phrases, entities, taxonomy and classification, text models;
stages chapters, enriched_metadata."""
