"""The keypad service: the front panel's keys, prompts, lit keys and the menu state machine."""
