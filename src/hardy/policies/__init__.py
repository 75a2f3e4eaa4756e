"""The decisions of every policy, written once in Cython's pure-Python mode.

Each module here is compiled into the extension (``hardy._core_c`` includes
it) and imported as it is by the pure-Python twin. A policy module holds the
state a policy decides from and side-effect-free transitions over it: they
take the state, the time and an outcome, change the state, and return what
the caller must do next (tell the listeners, ask the store, sleep so long).
They never read a clock, call a listener or a store, or take a lock: that is
the dispatch, written once per core (``hardy._c`` and ``hardy._py``).
"""
