"""assay's built-in reference target: HTTP/1.1, WebSocket and SSE on trio, h11 and wsproto.

``python -m refapp`` runs it (see ``__main__``); ``refapp.launch.start_refapp`` starts it as a
child process; ``refapp.defects`` lists the bugs it can be told to have. Modules, outside in:
``runtime`` (listen, accept, signals), ``server`` (one HTTP/1.1 connection), ``app`` (routes),
``sessions`` and ``items`` (state), ``websocket``, ``sse``, ``lenient`` (parser defects),
``transport`` (deadlined socket I/O), ``stats``, ``config``, ``testing`` (blocking clients).
"""
