"""The whole service against a simulated world (issue 19): what must hold after any run.

* ``invariants``: each invariant a pure function of what a run left (the journal's rows, the
  venue's own records), answering the violations it finds under the invariant's name.
"""
