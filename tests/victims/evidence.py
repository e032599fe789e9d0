"""Where failing victims leave the exception object they raise, so tests can check its identity."""

raised: list[BaseException] = []
