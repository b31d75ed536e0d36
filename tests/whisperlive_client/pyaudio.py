"""Stand-in for PyAudio (PortAudio's bindings) on the WhisperLive client's own sys.path, as on a machine with no
sound device.

``whisper_live/client.py`` (0.10.0) imports ``pyaudio`` at its top.  ``StreamingTranscriptionClient`` never
touches it; ``TranscriptionClient`` builds a ``PyAudio()`` and tries to open the microphone, and goes on when
that raises ``OSError`` (``TranscriptionTeeClient.__init__``), as PortAudio raises on a machine without an
input device; with ``mute_audio_playback=True`` a file is sent without opening any output.  This module is that
machine: the names the client reads, no device.  Nothing else of PyAudio exists here.
"""

#: PortAudio's sample format code for 16-bit integers (portaudio.h: ``#define paInt16 ((PaSampleFormat) 0x08)``).
paInt16 = 8


class PyAudio:
    def open(self, *args: object, **kwargs: object) -> None:
        # PortAudio's paInvalidDevice (-9996), as pyaudio raises it when there is no default device.
        raise OSError(-9996, "Invalid input device (no default output device)")

    def terminate(self) -> None:
        pass
