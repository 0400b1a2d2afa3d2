"""Imported once by the fork server of ``docintel serve`` (``deployments.FLOW_RUN_IMPORTS``): the first-use
costs every flow run would otherwise pay on its own, paid before it forks them."""

from pipeline.reports.exports import warm_up

warm_up()
