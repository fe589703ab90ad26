"""The outcome of an import, filled in by reading, judging and the move alike."""

from dataclasses import dataclass, field

from app.schemas.common import LineProblem

MAX_REPORTED = 100  # problems listed in a response; the counts cover every row


@dataclass
class ImportReport:
    """The outcome of an import."""

    created: int = 0
    skipped: int = 0
    errors: list[LineProblem] = field(default_factory=list)
    rows: int = 0
    invalid: int = 0

    def note(self, line: int, problem: str) -> None:
        """List a problem while the list is short; one entry a line."""
        if self.errors and self.errors[-1].line == line:
            self.errors[-1].problem += f"; {problem}"
        elif len(self.errors) < MAX_REPORTED:
            self.errors.append(LineProblem(line=line, problem=problem))
