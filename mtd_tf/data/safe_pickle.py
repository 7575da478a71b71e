"""Loads the field's pickled splits without ever running code from the file.

The published splits (SR-GNN / MTD / GCE-GNN repositories) are pickles of nested lists,
tuples and ints. A pickle can name any importable callable and call it on load, so a
downloaded file is untrusted input. Two independent defences, both before anything is
built:

1. Every opcode is checked against a whitelist of the opcodes that lists, tuples and ints
   need (plus framing and the memo). This rejects globals, calls, floats, strings, dicts,
   bools and None, and names the first offender.
2. The file is then loaded with an unpickler whose `find_class` always refuses, so even an
   opcode the whitelist let through by mistake could not import anything.

The bytes are read once, so what is checked is exactly what is loaded.

The whitelist check has a fast path: one regular expression, run in C, recognises the
opcodes the published files actually use. Anything it does not recognise gets the
opcode-by-opcode scan with `pickletools.genops`, about 3x slower (Diginetica's 4 MB
training file on a busy 2-core CPU: ~0.4 s against ~1.5 s), which also words the errors.
"""

import io
import pickle
import pickletools
import re

from mtd_tf.errors import DataError
from mtd_tf.io_utils import read_file_bytes

_ALLOWED_OPCODES = frozenset([
    # Framing.
    "PROTO", "FRAME", "STOP",
    # Lists and tuples.
    "MARK", "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    # Ints of every size and protocol (INT is also protocol 0's bool: checked below).
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    # The memo, which picklers use for every list and tuple.
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
])

_ALLOWED_SUMMARY = "only lists, tuples and ints are allowed"

# Allowed opcodes of protocol 2 and later with a fixed-size argument -> that size in bytes:
# all that the published files use (their ints are all below 2**31).
_FIXED_SIZE_OPCODES = {
    "PROTO": 1, "FRAME": 8, "MARK": 0, "EMPTY_LIST": 0, "APPEND": 0, "APPENDS": 0,
    "EMPTY_TUPLE": 0, "TUPLE": 0, "TUPLE1": 0, "TUPLE2": 0, "TUPLE3": 0,
    "BININT": 4, "BININT1": 1, "BININT2": 2,
    "MEMOIZE": 0, "BINPUT": 1, "LONG_BINPUT": 4, "BINGET": 1, "LONG_BINGET": 4,
}


def _fast_path_pattern():
    """`(?:[opcodes with no argument]|[opcodes with a 1-byte argument].|...)*STOP`.

    Each opcode is one distinct byte, so a match splits the data into opcodes in the one
    way the unpickler also does; fullmatch puts STOP at the very end.
    """
    opcodes_by_size = {}
    for name, argument_size in _FIXED_SIZE_OPCODES.items():
        opcodes_by_size.setdefault(argument_size, []).append(re.escape(getattr(pickle, name)))
    alternatives = [b"[" + b"".join(opcodes) + b"]" + b"." * argument_size
                    for argument_size, opcodes in opcodes_by_size.items()]
    return re.compile(b"(?:" + b"|".join(alternatives) + b")*" + re.escape(pickle.STOP),
                      re.DOTALL)


_FAST_PATH_PICKLE = _fast_path_pattern()

# What the first refused opcode means, so the message speaks of data, not opcodes.
_OPCODE_MEANINGS = {
    "FLOAT": "a float", "BINFLOAT": "a float",
    "NEWTRUE": "a bool", "NEWFALSE": "a bool",
    "NONE": "None",
    "EMPTY_DICT": "a dict", "DICT": "a dict", "SETITEM": "a dict", "SETITEMS": "a dict",
    "EMPTY_SET": "a set", "ADDITEMS": "a set", "FROZENSET": "a frozenset",
    "STRING": "a string", "BINSTRING": "a string", "SHORT_BINSTRING": "a string",
    "UNICODE": "a string", "BINUNICODE": "a string", "SHORT_BINUNICODE": "a string",
    "BINUNICODE8": "a string",
    "BINBYTES": "bytes", "SHORT_BINBYTES": "bytes", "BINBYTES8": "bytes",
    "BYTEARRAY8": "a bytearray", "NEXT_BUFFER": "an out-of-band buffer",
    "READONLY_BUFFER": "an out-of-band buffer",
    "REDUCE": "a function call", "BUILD": "an object's state", "OBJ": "an object",
    "NEWOBJ": "an object", "NEWOBJ_EX": "an object",
    "EXT1": "an extension-registry object", "EXT2": "an extension-registry object",
    "EXT4": "an extension-registry object",
    "PERSID": "a persistent id", "BINPERSID": "a persistent id",
}


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that cannot import: the second line of defence."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"pickle refers to {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("pickle uses a persistent id")


def load_restricted_pickle(path):
    """Loads a pickle that may contain only lists, tuples and ints.

    Args:
      path: the pickle file.

    Returns:
      The unpickled object, made only of lists, tuples and ints.

    Raises:
      DataError: naming `path`, if the file is empty, truncated, not a pickle, or holds
        anything but lists, tuples and ints (nothing from it is executed).
    """
    data = read_file_bytes(path)
    if not data:
        raise DataError(path, "file is empty")
    if not _FAST_PATH_PICKLE.fullmatch(data):
        _check_opcodes(path, data)
    try:
        return _NoGlobalsUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as error:
        # Opcodes that are each allowed can still be ordered nonsensically (APPEND with
        # no list below it, a GET of an unset memo slot).
        raise DataError(path, f"file is not a valid pickle ({error})") from None


def _check_opcodes(path, data):
    """Raises DataError for the first content the whitelist refuses, before any loading.

    A pickle that calls a function usually pushes strings first (STACK_GLOBAL's module and
    name), so after the first refused opcode the scan goes on to look for a global
    reference: "refers to os.system" helps a reader more than "contains a string".
    """
    first_refused = None
    recent_strings = []
    opcodes = pickletools.genops(data)
    while True:
        try:
            opcode, argument, position = next(opcodes)
        except StopIteration:
            break
        except ValueError as error:
            # genops raises ValueError for unknown opcodes and for data that ends early.
            if first_refused is None:
                raise DataError(path, f"file is truncated or not a pickle ({error})") from None
            break
        name = opcode.name
        if name in _ALLOWED_OPCODES:
            if name == "INT" and isinstance(argument, bool) and first_refused is None:
                # Protocol 0 writes True/False as INT 01/00.
                first_refused = f"pickle contains a bool at byte {position}"
            continue
        if name in ("GLOBAL", "INST"):
            module, _, attribute = argument.partition(" ")
            raise DataError(path, f"pickle refers to {module}.{attribute}: {_ALLOWED_SUMMARY}")
        if name == "STACK_GLOBAL":
            target = ".".join(recent_strings) if len(recent_strings) == 2 else "a global"
            raise DataError(path, f"pickle refers to {target}: {_ALLOWED_SUMMARY}")
        if isinstance(argument, str):
            recent_strings = recent_strings[-1:] + [argument]
        if first_refused is None:
            meaning = _OPCODE_MEANINGS.get(name, f"opcode {name}")
            first_refused = f"pickle contains {meaning} at byte {position}"
    if first_refused:
        # Text often scans as protocol 0/1 opcodes; pickles from protocol 2 on start with PROTO.
        hint = "" if data.startswith(pickle.PROTO) else " (or the file is not a pickle at all)"
        raise DataError(path, f"{first_refused}: {_ALLOWED_SUMMARY}{hint}")
