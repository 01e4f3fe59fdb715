#!/usr/bin/python3
"""README.md's code comes from examples/ (built and run by the test suite), verbatim:
  <!-- example: PATH --> ```...``` <!-- /example -->   the whole file PATH
  <!-- snippet:NAME --> ```cpp ... ```                 the region of examples/documents/main.cpp
                                                      between "// snippet:NAME" and "// snippet:end",
                                                      dedented
  docs_check.py --snippet NAME    prints a region as the README should show it."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
snippet_source = root / "examples/documents/main.cpp"


def region(name):
    lines, inside = [], False
    for line in snippet_source.read_text().splitlines():
        if re.fullmatch(r" *// snippet:" + re.escape(name), line):
            inside = True
        elif inside and re.fullmatch(r" *// snippet:end", line):
            break
        elif inside:
            lines.append(line)
    indent = min((len(l) - len(l.lstrip(" ")) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] for l in lines)


if len(sys.argv) == 3 and sys.argv[1] == "--snippet":
    print(region(sys.argv[2]))
    sys.exit(0)

readme = (root / "README.md").read_text()
failures = []
examples = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```\n<!-- /example -->", readme, re.S)
for path, code in examples:
    if (root / path).read_text() != code:
        failures.append(f"README.md's block for {path} differs from the file")
snippets = re.findall(r"<!-- snippet:([a-z-]+) -->\n```cpp\n(.*?)\n```", readme, re.S)
for name, code in snippets:
    expected = region(name)
    if not expected:
        failures.append(f"snippet '{name}' is missing from {snippet_source.relative_to(root)}")
    elif code != expected:
        failures.append(f"README.md snippet '{name}' differs from {snippet_source.relative_to(root)}")
if not examples or not snippets:
    failures.append("README.md lost its example or snippet blocks")
for f in failures:
    print(f, file=sys.stderr)
print(f"{len(examples)} README example(s) and {len(snippets)} snippet(s) checked")
sys.exit(1 if failures else 0)
