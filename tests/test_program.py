"""The program sandbox: what model-written code may do, and what stops it."""

import time

import pytest

from ftlib.tasks import program

# Each attack must be refused before it runs or stopped by a limit, within 2 s.
ATTACKS = {
    "import": "import os\nprint(os.listdir('/'))",
    "from-import": "from subprocess import run\nrun(['true'])",
    "open": "print(open('/etc/hostname'))",
    "dunder walk": "print(().__class__.__base__.__subclasses__())",
    "dunder name": "print(__import__('os'))",
    "eval": "print(eval('1 + 1'))",
    "huge power": "print(9**9**9)",
    "huge list": "x = [0] * 10**10\nprint(len(x))",
    "huge string": "print('a' * 10**10)",
    "endless loop": "while True:\n    pass",
    "unbounded range": "for i in range(10**12):\n    pass",
    "nested loops": "t = 0\nfor i in range(10**6):\n    for j in range(10**6):\n        t += 1\nprint(t)",
    "deep recursion": "def f(n):\n    return f(n + 1)\nprint(f(0))",
    "nesting the parser cannot hold": "print(" + "-" * 100_000 + "1)",
    "lambda": "f = lambda: 1\nprint(f())",
    "attribute call": "x = [1]\nx.append(2)\nprint(x)",
    "decorator": "@print\ndef f():\n    return 1",
}


@pytest.mark.parametrize("code", ATTACKS.values(), ids=ATTACKS.keys())
def test_every_attack_is_refused_or_stopped_within_two_seconds(code):
    start = time.monotonic()
    out = program.run(code)
    assert time.monotonic() - start < 2.0  # the wall-clock limit (1.5 s) fires first on a busy machine
    assert out.value is None and out.error


def test_a_refusal_names_the_line_and_the_construct():
    with pytest.raises(program.Refused, match=r"line 2: import is not allowed"):
        program.check("x = 1\nimport os")
    with pytest.raises(program.Refused, match=r"line 1: attribute access"):
        program.check("y = (1).__class__")


def test_the_limits_that_stop_a_program_are_reported():
    assert "CPU time" in program.run("print(9**9**9)", wall_s=30).error  # the kernel's limit, not the clock
    assert program.run("x = [0] * 10**10").error.startswith("MemoryError")
    assert "wall clock" in program.run("t = 0\nfor i in range(10**6):\n    t += i\nprint(t)", wall_s=0.01).error
    assert "range of" in program.run("for i in range(10**7):\n    pass").error


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("eggs = 16 - 3 - 4\nprint(eggs * 2)", "18"),
        ("def solution():\n    total = 0\n    for i in range(1, 5):\n        total += i\n    return total", "10"),
        ("from_shop = [3, 4.5]\nprint(f'The answer is {sum(from_shop):.2f}')", "The answer is 7.50"),
        ("print(max(divmod(17, 5)), round(sqrt(16)), floor(2.7), ceil(2.1))", "3 4 2 3"),
    ],
)
def test_ordinary_arithmetic_programs_run(code, value):
    assert program.run(code) == program.Outcome(value=value)


def test_a_program_that_prints_nothing_is_an_error_not_an_answer():
    assert program.run("x = 2 + 2") == program.Outcome(error="the program printed nothing")
