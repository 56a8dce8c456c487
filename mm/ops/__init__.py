"""Operations: session governor, track gate, autonomy modes, notifications, reports, checks.

It may import execution, feeds, the portfolio, the health snapshot, the venue port and factory, the
model and the process's services, and risk (risk notifies through ops); never a strategy or a venue
package.
"""
