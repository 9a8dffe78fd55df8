"""Distribution: Podcasting 2.0 chapters, WebVTT chapters and the tagged MP3; stage distribution."""
