"""How large the values a sandboxed script builds may be (see the package docstring)."""

MAX_ITEMS = 10_000_000  # longest str/list/tuple/range (and format width) a script may build
MAX_TEXT_ITEMS = MAX_ITEMS // 10  # most elements str()/repr() may write out, nested included
MAX_SORTED = MAX_ITEMS // 10  # most items sorted() may sort
MAX_INT_BITS = 14_000  # about 4,200 decimal digits: under Python's 4,300-digit int/str limit
MAX_POW_MOD_BITS = 2_048  # exponent and modulus of pow(a, e, m): 2048 bits take ~30 ms
MAX_DEPTH = 64  # deepest nesting of lists/dicts a variable may hold
_STORABLE_INT_BITS = 14_280  # < 4,300 digits: an int json can still write
STORABLE = "None, bool, int, float, str, list, dict with str keys, date or datetime"
