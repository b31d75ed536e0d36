"""``gpuboot serve``: live transcription over websockets in WhisperLive's protocol, so that its clients work
unchanged.  ``protocol.py`` the messages (pure), ``segments.py`` a stream's words as WhisperLive segments,
``settings.py`` the server's settings, ``server.py`` the asyncio server (``websockets``) over one
``gpuboot.LivePool``; the command is ``gpuboot/cli/serve.py``."""
