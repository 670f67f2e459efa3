"""Full pages: PAGE/ALTO layouts, line crops, and transcription of whole pages and whole archives."""
