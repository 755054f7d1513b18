"""Supervision (督办监督), all of it: what supervisors and the public see of the tickets.

* ``stats`` — dashboard figures (volume, SLA compliance, satisfaction per department);
* ``surge`` — the early warning when complaints about one thing rise (writes ``warnings``);
* ``districts`` / ``districts_national`` — which 区县 a place is in;
* ``hotspots`` — clusters of similar complaints in one district;
* ``opendata`` — the public files (categorical values only);
* ``apikeys`` and ``tickets`` — Open311 clients and the read side of the ticket tables;
* ``commands`` — ``citizenbot hotspots | warnings | export open-data | open311``.

Read-only over the ticket tables, except the ``warnings`` table the early-warning
rule writes.
"""
