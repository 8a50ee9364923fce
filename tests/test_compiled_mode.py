"""The compiled execution mode (--compile): a usage error for an unknown backend, nothing added
to the default run, and a fault that fires only in compiled code is caught by it alone."""

from tests.helpers import first_failure, run_pytest

FAULT = ("--hypothesis-profile=faults", "--inject-fault=compiled_outputs_are_copies", "--behaviour=views")


def test_an_unknown_backend_is_a_one_line_usage_error():
    result = run_pytest("--collect-only", "-q", "--compile=no_such_backend")
    assert result.returncode == 4 and "not a torch.compile backend" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_default_run_collects_no_compiled_item():
    result = run_pytest("--collect-only", "-q")
    assert result.returncode == 0 and "test_compiled" not in result.stdout, result.stdout[-2000:]
    named = run_pytest("-q", "-rs", "conformance/test_compiled.py")
    assert named.returncode == 0 and "add --compile=BACKEND" in named.stdout, named.stdout[-2000:]


def test_a_fault_in_compiled_code_is_caught_by_the_compiled_mode_and_by_nothing_else():
    eager = run_pytest("-q", "-W", "ignore::UserWarning", *FAULT)
    assert eager.returncode == 0, eager.stdout[-3000:]
    compiled = run_pytest("-q", "-W", "ignore::UserWarning", "--compile=aot_eager", *FAULT)
    assert compiled.returncode == 1, compiled.stdout[-3000:]
    assert "reshape_view_or_copy-aot_eager-cpu" in compiled.stdout and "share memory with inputs" in compiled.stdout


def test_a_compiled_failure_fits_on_one_screen_with_example_message_repro_line_and_script_first():
    """Note [One screen per failure]: under 80 lines by default (torch's compile logs silenced), the
    falsifying example, the check's message, the repro line and the script first; -v gives more."""
    one = (
        "--compile=aot_eager",
        *FAULT,
        "-k",
        "reshape_view_or_copy-aot_eager-cpu-float32 and not compilers_break",
        "-W",
        "ignore::UserWarning",
    )
    default = run_pytest(*one)
    assert default.returncode == 1, default.stdout[-3000:]
    failure = first_failure(default.stdout, "test_compiled_agrees_with_eager")
    assert len(failure) < 80, "\n".join(failure)
    assert "torch.__trace" not in default.stdout and "Captured log" not in default.stdout
    firsts = ("Failing test case", "AssertionError: views.reshape_view_or_copy", "repro line: pytest ", "standalone repro")
    at = [next(i for i, line in enumerate(failure) if line.startswith(first)) for first in firsts]
    assert at[0] == 0 and at == sorted(at), "\n".join(failure)
    assert "--inject-fault=compiled_outputs_are_copies" in failure[at[2]] and "--compile=aot_eager" in failure[at[2]]
    verbose = run_pytest("-v", *one)
    assert len(first_failure(verbose.stdout, "test_compiled_agrees_with_eager")) > len(failure)
    assert "def test_compiled_agrees_with_eager(" in verbose.stdout
