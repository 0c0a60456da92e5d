"""The fuzz suite's tally (cases per parser and their outcomes), printed after the run."""

import pytest

_TALLY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def fuzz_tally(request) -> dict:
  """{parser: Counter(cases, error, valid)} and {'<parser> valid by kind': Counter}."""
  return request.config.stash.setdefault(_TALLY, {})


def pytest_terminal_summary(terminalreporter, config):
  tally = config.stash.get(_TALLY, None)
  if not tally:
    return
  write = terminalreporter.write_line
  terminalreporter.section("skeleton fuzz cases")
  write(f"{'parser':16s} {'cases':>6s} {'error':>6s} {'valid':>6s}  valid files by mutation kind")
  for name in sorted(k for k in tally if not k.endswith(" valid by kind")):
    c = tally[name]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally[f"{name} valid by kind"].items()))
    write(f"{name:16s} {c['cases']:6d} {c['error']:6d} {c['valid']:6d}  {kinds}")
  write(f"{'total':16s} {sum(tally[k]['cases'] for k in tally if 'by kind' not in k):6d}")
