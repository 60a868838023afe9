"""The parts of ``CrisisResponseWorkflow`` (app.temporal.workflows), one job each.

Each part is a plain class the workflow builds in ``@workflow.init`` with the parts it works
with passed in; none holds module-level state (workers run workflows outside the sandbox).

- ``state``: ``CrisisState``, everything a crisis carries into the run it continues as
- ``phases``: ``PhaseBoard``, where each phase stands, and the events a change makes
- ``events``: ``CrisisEvents``, the crisis's event stream and its webhook deliveries
- ``bookkeeping``: ``CrisisBookkeeping``, the crisis record's writes
- ``approvals``: ``Approvals``, approval gates, decisions and their quorum
- ``params``: ``PhaseParams``, references resolved and the output budget
- ``running``: ``PhaseRunner``, one phase from its gate to its record entry
- ``scheduling``: ``PhaseScheduler``, the plan run as it grows, sequentially or as a graph
- ``compensation``: ``Compensation``, undoing completed phases, last first
- ``continuation``: ``Continuation``, continue-as-new past the history budget
- ``observability``: log fields and the ``CrisisStatus`` search attribute
"""
