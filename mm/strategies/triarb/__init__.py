"""Triangular arbitrage (issue 18): three legs through three pairs, from a primary quote
currency back to it, found on the books and executed from real fills.

``strategy.kind = "triarb"`` runs it: the strategy task feeds ``strategy`` the books, its
signals go to the ``desk``, whose executor slots (children of the trading scope) run the legs
through ``venue`` (live through the order router, or paper behind the venue's test order).

* ``legs``: what a triangle and its legs are;
* ``triangles``: finding them among a venue's instruments, and evaluating them on the books
  as execution will (depth, fees, increments, minimums, book age and continuity);
* ``cascade``: each leg's order from the previous leg's actual output, what a leg yielded from
  its fills, and paper fills from the books as evaluated;
* ``config``: the ``[triarb]`` section;
* ``signals``: the evaluator, re-evaluating the triangles a book touches, and its perishable
  signals (dropped and counted, never awaited, when the queue is full);
* ``claims``: the isolation rule the executor slots claim triangles under;
* ``limits``: the triangle risk limits (inventory per currency, daily loss per primary, the
  rate of triangles, the permission board);
* ``reports``: how a triangle ended, as the reference's log line and a journal row;
* ``slot``: an executor slot: it claims a signal's triangle, cascades its legs from their actual
  fills through a ``LegVenue`` (live, or ``PaperVenue`` filling from the books as evaluated),
  unwinds or holds what a failed leg strands, and always reports.
* ``strategy``: the Strategy protocol's side: triangles found among the symbols at open, each
  book evaluated, the signals handed out at each decision;
* ``desk``: each signal started for a waiting slot (its first leg written from the feed's task)
  or queued, the slots as the trading subtree's children, the risk limits' admission, and each
  report logged, journaled, counted and kept for ``mm status``;
* ``signal_queue``: the bounded queue between the strategy and the slots, and each slot's
  inbox (which slot waits, so that a triangle can be started for it);
* ``venue``: the slots' ways to the venue, and the fills routed to them by client order id;
* ``balances``: the venue's pushed balances, for the balance override (``await_balance``).
"""
