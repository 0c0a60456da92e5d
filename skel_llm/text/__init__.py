"""Text: prompts for every training stage, the chat template, answer parsing."""
