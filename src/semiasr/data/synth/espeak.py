"""eSpeak NG through ctypes: text in, 16-bit mono speech at 22,050 Hz out.

The library and its data come from the ``espeakng-loader`` package. eSpeak NG keeps synthesis state
(pitch-flutter phase, waveform phase, sample counters) in static variables that neither
``espeak_Initialize`` nor ``espeak_SetVoiceByName`` resets, so the same request gives slightly
different samples depending on what the process said before. To make every utterance a pure function
of its request (hence the corpus identical for any number of worker processes) :meth:`Espeak.say`
unloads and reloads the shared library before each utterance; that costs about 4 ms.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from semiasr.errors import DataError

__all__ = ["BASE_VOICES", "ESPEAK_SAMPLE_RATE", "VARIANTS", "Espeak"]

ESPEAK_SAMPLE_RATE = 22050
BASE_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
"""eSpeak NG English voices that load (``en-gb`` does not): US, British, Scottish, RP, Caribbean,
New York."""
VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
"""Voice variants appended as ``+m3``: seven male-sounding, five female-sounding."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_LOCK = threading.Lock()  # the library is process-global: one utterance at a time
_LOADED: list[ctypes.CDLL] = []  # the one loaded copy, shared by every Espeak of the process


class Espeak:
    """A handle on eSpeak NG. All handles of a process share one loaded copy of the library, which
    ``say`` reloads before each utterance (a second copy held elsewhere would keep the old state
    alive)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            self._lib_path = espeakng_loader.get_library_path()
            self._data_path = espeakng_loader.get_data_path().encode()
        except (ImportError, RuntimeError) as e:
            raise DataError(f"eSpeak NG is unavailable ({e}); pip install espeakng-loader") from e
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as self

    def _collect(self, wav, n: int, events) -> int:  # type: ignore[no-untyped-def]
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def _fresh_library(self) -> ctypes.CDLL:
        """Unload the library (dropping all of its static state) and load it again."""
        _unload()
        lib = ctypes.CDLL(self._lib_path)
        _LOADED.append(lib)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path, 0)
        if rate != ESPEAK_SAMPLE_RATE:
            raise DataError(f"espeak_Initialize returned {rate}, expected {ESPEAK_SAMPLE_RATE}")
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
        return lib

    def say(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Speak ``text`` (plain words) with ``voice`` (e.g. "en-us+f3") at ``rate_wpm`` words per
        minute and ``pitch`` 0..100. Returns int16 samples at 22,050 Hz, shape (T,)."""
        with _LOCK:
            lib = self._fresh_library()
            self._chunks = []
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise DataError(f"eSpeak NG rejects voice {voice!r}")
            lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            data = text.encode()
            size = len(data) + 1
            status = lib.espeak_Synth(data, size, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != 0 or lib.espeak_Synchronize() != 0:
                raise DataError(f"eSpeak NG failed ({status}) on {text!r}")
            _unload()  # the callback must not outlive this handle
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise DataError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
        return np.concatenate(chunks)


def _unload() -> None:
    import _ctypes

    while _LOADED:
        lib = _LOADED.pop()
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)
