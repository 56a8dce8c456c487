"""Operations: session governor, track gate, autonomy modes, notifications, reports, checks."""
