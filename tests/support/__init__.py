"""Helpers the tests share: where CrossBridge is (``crossbridge_target``), a private PostgreSQL server
(``pgserver``, fixtures in ``postgres``), a small real OTLP receiver (``otlp_sink``), fake Bitbucket and model servers
on 127.0.0.1 (``fake_bitbucket``, ``fake_llm``), span helpers (``spans``), and per-package helpers (``engine``,
``logs``, ``retry``, ``view``, ``cdp``). Imported as ``support.<module>`` (pytest's ``pythonpath`` is ``tests``).
"""
