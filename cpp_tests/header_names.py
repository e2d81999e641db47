#!/usr/bin/env python3
"""Checks that every name include/tensorbridge.h declares starts with tb_, Tb or TB_.

A C header shares one namespace with everything its users include: a name such as `Stream` or
`MAX_CHANNELS` collides with theirs. Checked: macros (except the include guard), functions,
typedef names, struct/union/enum tags and enumerators, in every preprocessor branch (C and C++).
Struct fields and parameter names are scoped and not checked.

    header_names.py HEADER          # exit 1 and list each leaking name with its line
    header_names.py --self-test     # the parser finds every kind of name in a sample header
"""
import re
import sys

PREFIXES = ("tb_", "Tb", "TB_")
INCLUDE_GUARD = "TENSORBRIDGE_H"
KEYWORDS = {
    "typedef", "struct", "union", "enum", "extern", "static", "inline", "const", "volatile",
    "restrict", "signed", "unsigned", "void", "char", "short", "int", "long", "float", "double",
    "bool", "_Bool", "noexcept",
}
IDENT = r"[A-Za-z_]\w*"


def strip_comments(text):
    """Blanks comments and string/char literals, keeping line numbers."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)

    def blank(match):
        token = match.group(0)
        if token[0] == "/":
            return re.sub(r"[^\n]", " ", token)
        return '""'  # a literal stays a (nameless) token

    return pattern.sub(blank, text)


def declared_names(text):
    """Yields (name, kind, line) for every name the header declares."""
    code = strip_comments(text.replace("\\\n", "  "))
    line_of = lambda pos: code.count("\n", 0, pos) + 1

    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(" + IDENT + ")", code, re.M):
        yield m.group(1), "macro", line_of(m.start(1))
    # The declarations of all branches together: drop directives, keep their line breaks.
    code = re.sub(r"^[ \t]*#[^\n]*", "", code, flags=re.M)
    code = re.sub(r'\bextern\s+""\s*\{', lambda m: " " * len(m.group(0)), code)  # extern "C" {

    for m in re.finditer(r"\b(struct|union|enum)\s+(" + IDENT + ")", code):
        yield m.group(2), m.group(1) + " tag", line_of(m.start(2))
    for m in re.finditer(r"\benum\b[^{;]*\{([^}]*)\}", code):
        for e in re.finditer(r"(?:^|,)\s*(" + IDENT + r")\s*(?==|,|$)", m.group(1)):
            yield e.group(1), "enumerator", line_of(m.start(1) + e.start(1))

    # Blank every brace body (innermost first), so only top-level declarations remain.
    previous = None
    while previous != code:
        previous = code
        code = re.sub(r"\{[^{}]*\}", lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
    code = code.replace("}", " ")  # the closing brace of extern "C"

    start = 0
    for end in (m.start() for m in re.finditer(";", code)):
        statement = code[start:end]
        offset = start
        start = end + 1
        words = [(w.group(0), w.start()) for w in re.finditer(IDENT, statement)]
        if not words:
            continue
        is_typedef = words[0][0] == "typedef"
        tag_only = r"\s*(?:struct|union|enum)\s+" + IDENT + r"\s*(?::\s*" + IDENT + r"\s*)?"
        if re.fullmatch(tag_only, statement):
            continue  # a tag definition (`enum TbX : int32_t { … };`): its tag is counted above
        pointer = re.search(r"\(\s*\*\s*(" + IDENT + r")\s*\)", statement)  # (*name)(args)
        call = re.search(r"(" + IDENT + r")\s*\(", statement)
        if pointer:
            name, pos = pointer.group(1), pointer.start(1)
        elif call and not is_typedef:
            name, pos = call.group(1), call.start(1)
        else:
            head = re.sub(r"\[[^\]]*\]", "", statement)  # array extents
            tail = re.findall(r"(" + IDENT + r")\s*$", head.strip())
            if not tail or tail[0] in KEYWORDS:
                continue
            name, pos = tail[0], statement.rfind(tail[0])
        kind = "typedef" if is_typedef else ("function" if call and not pointer else "variable")
        yield name, kind, line_of(offset + pos)


def leaks(text):
    found = {}
    for name, kind, line in declared_names(text):
        if name == INCLUDE_GUARD or name.startswith(PREFIXES):
            continue
        found.setdefault(name, []).append((kind, line))
    return found


SAMPLE = """/* a comment naming Bad1 */
#ifndef TENSORBRIDGE_H
#define TENSORBRIDGE_H
#include <stdint.h>
#define TB_OK 1
#define BAD_MACRO(x) (x)
#ifdef __cplusplus
extern "C" {
#endif
typedef enum TbGood { TB_GOOD_A = 0, BAD_ENUMERATOR, TB_GOOD_B = 2 } TbGood;
enum BadTag
#if defined(__cplusplus)
  : int32_t
#endif
 { TB_X = 1, };
enum TbSized : uint8_t { TB_SIZED = (1 << 0), };
typedef struct BadOpaque BadOpaque;
typedef struct TbOk { int32_t field; void (*callback)(void *ctx); } TbOk;
typedef void (*BadCallback)(void *context, const char *name);
typedef int64_t BadAlias[4];
extern const int32_t bad_variable;
TbOk tb_good_function(const struct TbOk *in, int32_t count);
void bad_function(void);
enum TbGood tb_returns_enum(void);
#ifdef __cplusplus
}  // extern "C"
#endif
#endif
"""
SAMPLE_LEAKS = {"BAD_MACRO", "BAD_ENUMERATOR", "BadTag", "BadOpaque", "BadCallback", "BadAlias",
                "bad_variable", "bad_function"}
SAMPLE_GOOD = {"TB_OK", "TbGood", "TB_GOOD_A", "TB_GOOD_B", "TB_X", "TbSized", "TB_SIZED", "TbOk",
               "tb_good_function", "tb_returns_enum"}


def self_test():
    names = {name for name, _, _ in declared_names(SAMPLE)}
    missing = (SAMPLE_LEAKS | SAMPLE_GOOD) - names
    wrong = set(leaks(SAMPLE)) ^ SAMPLE_LEAKS
    for problem, items in (("not found", missing), ("misclassified", wrong)):
        if items:
            print(f"header_names self-test: {problem}: {', '.join(sorted(items))}")
    return 1 if missing or wrong else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    names = list(declared_names(text))
    # Guard against a parser that silently finds nothing.
    for expected in ("tb_tensor_wrap", "TbStatus", "TB_SUCCESS", "TB_MAX_RANK", "TbCleanupFn"):
        if expected not in {name for name, _, _ in names}:
            print(f"{path}: the parser did not find {expected}; fix {argv[0]}")
            return 1
    found = leaks(text)
    if not found:
        print(f"{path}: all {len({n for n, _, _ in names})} declared names start with "
              + ", ".join(PREFIXES))
        return 0
    print(f"{path}: {len(found)} declared name(s) do not start with " + ", ".join(PREFIXES) + ":")
    for name, places in sorted(found.items()):
        where = ", ".join(f"{kind} at line {line}" for kind, line in places)
        print(f"  {name} ({where})")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
