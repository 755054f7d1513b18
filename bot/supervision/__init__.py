"""Supervision (督办监督): dashboard statistics, districts and surge early warning.

Read-only over the ticket tables (SQLAlchemy Core ``select``), except the
``warnings`` table the early-warning rule writes. Hot spots live in
:mod:`bot.hotspots` and open data in :mod:`bot.opendata`, which both use the
district table here.
"""
