"""The interpreter's and the worker's limits: every bound a program runs under."""

MAX_SOURCE = 5_000  # characters of program text
MAX_DEPTH = 60  # nesting of the syntax tree
MAX_STEPS = 100_000  # node evaluations; heavy builtins pay one per COPY_COST elements
MAX_CALLS = 50  # nested calls of the program's own functions
INT_LIMIT = 10**40  # every int stays strictly inside ±INT_LIMIT
MAX_EXPONENT = 64
MAX_POWER_BITS = 256  # a bound on a power's size before computing it; the exact check follows
MAX_CONST = 1_000  # characters of a string literal
MAX_STR = 10_000
MAX_LIST = 100_000
MAX_RANGE = 1_000_000
MAX_OUTPUT = 100_000  # characters printed
MAX_NEST = 20  # values inside values; also stops a list that contains itself
COPY_COST = 10  # elements copied or compared per step
MAX_SENT = 10_000  # elements of a value the worker sends back
MAX_REPLY = 1_000_000  # characters of one reply line from the worker
WORKER_RUNS = 500  # programs one worker process runs before it is replaced
WORKER_CPU_S = 120  # CPU seconds a worker may use in all: a backstop, never reached normally
STARTUP_TIMEOUT_S = 60.0  # for the worker process to start, apart from the program's time
