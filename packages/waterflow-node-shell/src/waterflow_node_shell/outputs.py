"""Parsing the step outputs file, in GitHub's ``$GITHUB_OUTPUT`` format."""

from __future__ import annotations


class OutputFileError(ValueError):
    """The outputs file is not in the ``key=value`` / ``key<<DELIMITER`` format."""


def parse_output_file(text: str) -> dict[str, str]:
    """Parse ``key=value`` lines and ``key<<DELIMITER`` ... ``DELIMITER`` blocks (multi-line values).

    As in GitHub Actions: empty lines are skipped, a later key overwrites an earlier one, a line
    is a heredoc when ``<<`` comes before any ``=``, and a heredoc without its closing delimiter
    line is an error.
    """
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    outputs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if heredoc >= 0 and (equals < 0 or heredoc < equals):
            key, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not key or not delimiter:
                raise OutputFileError(f"line {number}: expected 'name<<DELIMITER', got {line!r}")
            body: list[str] = []
            while True:
                if i >= len(lines):
                    raise OutputFileError(f"line {number}: no closing delimiter {delimiter!r} for output {key!r}")
                i += 1
                if lines[i - 1] == delimiter:
                    break
                body.append(lines[i - 1])
            outputs[key] = "\n".join(body)
        elif equals > 0:
            outputs[line[:equals]] = line[equals + 1 :]
        else:
            raise OutputFileError(f"line {number}: expected 'name=value' or 'name<<DELIMITER', got {line!r}")
    return outputs
