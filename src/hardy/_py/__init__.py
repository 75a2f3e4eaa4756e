"""The pure-Python twin's dispatch, one module per concern (``hardy._c`` is the compiled one).

The decisions are not here: both cores run the same policy modules
(``hardy.policies``). What is here is what Python does around them, written
to behave exactly as the compiled dispatch: the lock around each transition,
the clock, the listeners and the store called after it, the wrappers of
protected, retried, chained and timed functions. ``hardy._core_py`` gathers
the names the rest of hardy uses.
"""
