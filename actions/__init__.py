"""Custom actions run by the rasa_sdk action server (``python -m rasa_sdk --actions actions``).

Only actions write tickets; they reach the ticket store through ``bot.tickets``
so every rule of a ticket's life is applied in one place.
"""
