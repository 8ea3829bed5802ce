"""PTB tokenisation exactly as pycocoevalcap does it before CIDEr: Stanford CoreNLP 3.4.1's
PTBTokenizer (-preserveLines -lowerCase), then its punctuation tokens dropped.

Java is the reference. Without Java, a pure-Python lexer reproduces the Java output on a checked
subset of English: Latin-1 letters, digits, common punctuation and quotes, clitics ("it 's",
"do n't"), hyphenated words, numbers, abbreviations and acronyms. Where the Java grammar has rules
we did not model (URLs, fractions, phone numbers, smileys, odd apostrophes, an abbreviation whose
period depends on the next word...), _check refuses the text with a BenchError asking for Java,
so a CIDEr score never silently differs from pycocoevalcap's. The lexer and its guards were
checked against the jar on some 300,000 generated captions.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchutil.errors import BenchError

# pycocoevalcap's PUNCTUATIONS. The bracket names are upper case but -lowerCase prints them
# lower case, so pycocoevalcap keeps "-lrb-" and "-rrb-" as words; we must too.
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])
JAR = "stanford-corenlp-3.4.1.jar"
NEEDS_JAVA = "install a JRE, e.g. apt install default-jre"
# Java's lexer ends a line at each of these; pycocoevalcap only replaces "\n", so any other one
# shifts every later caption onto the wrong image. We replace them all (identical otherwise).
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\u2028\u2029]")


def java_path() -> str | None:
    """The java executable, or None (tests monkeypatch shutil.which to take the no-Java path)."""
    return shutil.which("java")


def tokenize(captions: list[str], tokenizer: str = "auto") -> list[str]:
    """One tokenised, lower-cased, punctuation-free string per caption.
    tokenizer: "java" (pycocoevalcap's jar), "python" (checked subset) or "auto" (Java if found)."""
    if tokenizer not in ("auto", "java", "python"):
        raise BenchError(f"unknown PTB tokenizer {tokenizer!r}; use auto, java or python")
    java = java_path()
    if tokenizer == "java" or (tokenizer == "auto" and java):
        if not java:
            raise BenchError(f"the java PTB tokenizer needs Java on PATH; {NEEDS_JAVA}")
        return java_tokenize(captions, java)
    return python_tokenize(captions)


def _drop_punctuation(line: str) -> str:
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)


def jar_path() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        if (Path(root) / "tokenizer" / JAR).is_file():
            return Path(root) / "tokenizer" / JAR
    raise BenchError(f"CIDEr needs pycocoevalcap's {JAR}; pip install 'pycocoevalcap>=1.2'")


def java_tokenize(captions: list[str], java: str = "java") -> list[str]:
    """pycocoevalcap's PTBTokenizer, but with the temp file outside the (maybe read-only) package."""
    if not captions:
        return []
    text = "\n".join(_LINE_BREAKS.sub(" ", c) for c in captions)
    with tempfile.TemporaryDirectory(prefix="ptb-") as tmp:
        path = Path(tmp) / "captions.txt"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        cmd = [java, "-cp", str(jar_path()), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(path)]
        done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise BenchError(f"the Java PTB tokenizer failed ({' '.join(tail)}); check the JRE ({NEEDS_JAVA})")
    lines = done.stdout.decode("utf-8").split("\n")
    if len(lines) != len(captions):  # would silently pair tokens with the wrong captions
        raise BenchError(f"the Java PTB tokenizer returned {len(lines)} lines for {len(captions)} "
                         "captions; a caption holds a line break it sees (please report)")
    return [_drop_punctuation(line) for line in lines]


# ---------------------------------------------------------------- pure-Python lexer
# Letters as Java's [:letter:] sees them, restricted to ASCII and Latin-1 (where Python's lower()
# equals Java's toLowerCase()).
L = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"
ALLOWED = re.compile(f"[{L}0-9 \t\n.,;:!?'\"()\\[\\]%&\\-\u2019\u2018\u201c\u201d\u2013\u2014\u2015\u2026]*")
QUOTES = "'\"\u2018\u2019\u201c\u201d"

# Words that keep their period ("mr." stays one token), found by running the 3.4.1 jar on every
# 1-4 letter word in three casings, every 5-letter one in lower case and the longer
# abbreviations of the CoreNLP grammar.
_ABBR = set("""a adj adm adv al ala alex apr ariz assn assoc asst atty attys aug ave b bancorp bhd
bldg blvd brig bros c calif capt cf cie cmdr co col colo comdr conn corp cos cpl ct d dak dec dept det
dr drs e elec ens esq est etc ext f feb fla fri ft g ga gen gov govs h hon i inc ind insp intl invt j
jan jos jr jul jun k kan kans ky l lieut lt ltd m maj mar md messrs mich minn mlle mme mo mon mont mr
mrs ms msgr mt n natl neb nev nov o oct okla p penn pfc ph plc pres prof profs pvt q r rd rep reps rev
rt s sen sens sep sept seq sfc sgt spc sq sr st ste supt supts sys t tel tenn thu thurs treas tue
tues u univ v va vs vt w wed wis wisc wm wyo x y z""".split())
_ABBR_CAPITAL = set("ark az del ill la mass miss ore pa tex wash".split())  # only "Miss." / "MISS."
_ABBR_LOWER_TAIL = set("mfg mtg ppte pptes ppty pptys pte ptes pty ptys".split())  # not "MFG."
# Kept before a number only ("fig. 3"); we refuse that context rather than model it.
_ABBR_BEFORE_NUMBER = "ca|no|op|pp|art|fig|nos|figs|prop"
_ABBR_ANY = _ABBR | _ABBR_CAPITAL | _ABBR_LOWER_TAIL


def _keeps_period(word: str) -> bool:
    low = word.lower()
    if low not in _ABBR_ANY:
        return False
    if not (word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower())):
        raise _Outside(f"the mixed-case abbreviation {word + '.'!r}")
    return (low in _ABBR or (low in _ABBR_CAPITAL and word[0].isupper())
            or (low in _ABBR_LOWER_TAIL and (len(word) == 1 or word[1:].islower())))


class _Outside(Exception):
    """The text uses something the pure-Python lexer was not checked against."""


_T = f"[{L}0-9]"
_THING = f"{_T}+(?:-{_T}+)*"  # hyphenated words and numbers stay one token ("3-year-old")
_HTHING = "[A-Za-z0-9][A-Za-z0-9.,]*(?:-[A-Za-z0-9]+)+"  # "3.5-inch", "1,000-piece"
_APOS = "'\u2019"
_CLITIC = f"[{_APOS}](?i:s|m|d|re|ve|ll)"


def _lower(tok: str) -> str:
    return tok.lower()


def _apostrophe(tok: str) -> str:
    return tok.replace("\u2019", "'").lower()


def _hyphens(tok: str) -> str:
    return "--" if len(tok) in (3, 4) else tok  # Java's ptb3Dashes: only 3-4 hyphens become "--"


_WORD_DOT = re.compile(f"[{L}]+\\.")


def _abbrev(text: str, i: int) -> int:
    m = _WORD_DOT.match(text, i)
    return m.end() - i if m and _keeps_period(m.group()[:-1]) else 0


# (regex or length function, output) in Java's rule order. A regex's whole match counts for the
# longest-match choice (as JFlex counts trailing context); group "tok" is the token itself.
_Rule = tuple[re.Pattern[str] | Callable[[str, int], int], Callable[[str], str] | str | None]
_RULES: list[_Rule] = [(re.compile(r), out) if isinstance(r, str) else (r, out) for r, out in [
    (r"(?P<tok>(?i:can))(?i:not)", _lower),  # cannot -> can not
    (r"(?P<tok>(?i:gon(?=na)|wan(?=na)|got(?=ta)|lem(?=me)|gim(?=me)))(?i:na|ta|me)", _lower),
    ("[\u2013\u2014\u2015]", "--"),
    (f"(?P<tok>[{L}]+){_CLITIC}", _lower),  # it's -> it 's
    (f"(?P<tok>[A-Za-z]*[A-MO-Za-mo-z])(?i:n)[{_APOS}](?i:t)", _lower),  # don't -> do n't
    (f"[{L}]+", _lower),
    (f"(?P<tok>{_CLITIC})[^A-Za-z]", _apostrophe),
    (f"(?i:n)[{_APOS}](?i:t)", _apostrophe),
    (r"[-+]?(?:[0-9]+(?:[.:,][0-9]+)*|(?:[.:,][0-9]+)+)", _lower),
    (_THING, _lower),
    (_HTHING, _lower),
    (f"(?P<tok>[{L}]+\\.)[,;:]", _lower),  # "dog.," keeps its period
    (f"(?P<tok>{_THING}\\.)[,;:]", _lower),
    (f"(?P<tok>{_HTHING}\\.)[,;:]", _lower),
    (r"[A-Za-z](?:\.[A-Za-z])+\.?", _lower),  # "U.S." and "a.m." keep their periods
    (_abbrev, _lower),
    ('"', "''"),
    ("(?P<tok>')[A-Za-z][^ \t\n\r\u00a0]", "'"),  # ASCII only: "’nice" lexes as "’n ice"
    (_CLITIC, _apostrophe),
    (f"[{QUOTES}]", "'"),  # every lone quote mark is dropped, whichever way it faces
    (r"\(", "-lrb-"),
    (r"\)", "-rrb-"),
    (r"\[", "-lsb-"),
    (r"\]", "-rsb-"),
    ("-+", _hyphens),
    ("\\.{3,5}|\\.(?: \\.){2,4}|\u2026", "..."),
    ("[,;:]", _lower),
    ("[?!]+", _lower),  # "?!" stays a token (pycocoevalcap keeps it)
    (r"\.", _lower),
    ("[%&]", _lower),
    ("[ \t\n]+", None),
]]


_PLAIN_WORD = re.compile(f"(?P<word>[{L}]+)(?:(?=[ \t\n,;:!?)]|\\Z)|(?P<dot>\\.)(?=[ \t\n]|\\Z))")
_SPLIT_WORDS = {"cannot", "gonna", "wanna", "gotta", "lemme", "gimme"}


def _lex(text: str) -> list[list[str]]:
    """Java's longest-match lexing over the whole file (rules can look past a line's end)."""
    lines: list[list[str]] = [[]]
    i = 0
    try:
        while i < len(text):
            i = _next_token(text, i, lines)
    except _Outside as e:
        raise _Outside(e.args[0], i) from None
    return lines


def _next_token(text: str, i: int, lines: list[list[str]]) -> int:
    """Append the token at i to the last line (or start new lines); return where the next starts."""
    # Fast paths for the common cases, where (given _check) no rule matches longer or wins a tie.
    if text[i] in " \t\n":
        lines.extend([] for _ in range(text[i] == "\n"))
        return i + 1
    if text[i] in ",;:." and text[i + 1:i + 2] in ("", " ", "\t", "\n"):
        lines[-1].append(text[i])  # ". . ." would lex as one "...": dropped all the same
        return i + 1
    m = _PLAIN_WORD.match(text, i)
    if m and m.group("word").lower() not in _SPLIT_WORDS:
        if not (m.group("dot") and _keeps_period(m.group("word"))):
            lines[-1].append(m.group("word").lower())
            return m.end("word")
    best: tuple[int, int, _Rule] | None = None  # (match length, token length, rule)
    for rule in _RULES:
        pattern = rule[0]
        if isinstance(pattern, re.Pattern):
            m = pattern.match(text, i)
            if m and (best is None or m.end() - i > best[0]):
                tok = m.group("tok") if "tok" in pattern.groupindex else m.group()
                best = (m.end() - i, len(tok), rule)
        elif (n := pattern(text, i)) and (best is None or n > best[0]):
            best = (n, n, rule)
    if best is None:
        raise _Outside(f"the character {text[i]!r}")
    _, size, (_, out) = best
    token = text[i:i + size]
    if out is None:
        lines.extend([] for _ in range(token.count("\n")))
    else:
        lines[-1].append(out(token) if callable(out) else out)
    return i + size


_OPENERS = ("", " ", "\t", "\n", "(", '"', "\u201c")
_CLOSERS = ("", " ", "\t", "\n", ".", ",", ";", ":", "!", "?", ")", '"', "\u201d")
_AFTER_QUOTE = ("em", "cause", "til", "tis", "twas")  # Java splits "'emma" as "'em ma"
_APOWORDS = {"ol", "somethin", "dunkin"}  # Java keeps their final apostrophe ("ol'")
# Where the Java grammar has rules we did not model: (pattern, what the caption has).
_GUARDS = [(re.compile(p), why) for p, why in [
    (f"[^{ALLOWED.pattern[1:-2]}]", "a character outside the checked set"),
    (f"[{L}0-9]{{2}}\\.[{L}]|[{L}]\\.[{L}][{L}0-9]|[0-9]\\.[{L}]|[{L}]\\.[0-9]|[\u00c0-\u00ff]\\.[{L}]"
     f"|[{L}]\\.[\u00c0-\u00ff]", "a dotted word or address"),
    ("[.,]-|-[A-Za-z]\\.", "a hyphen next to a dotted abbreviation"),
    ("(?<![0-9])[.,:][0-9]", "a number without leading digits"),
    (f"[{L}][0-9]*[.,:][0-9]", "a number glued to letters"),
    ("[0-9)][ \t]+[-+(]?[0-9]|\\)[0-9]", "numbers separated by a space (Java may join them)"),
    (f";(?![ \t\n{QUOTES}]|\\Z)|:(?![ \t\n{QUOTES}0-9]|\\Z)|[;:][{QUOTES}](?![ \t\n]|\\Z)",
     "a colon or semicolon inside a word or smiley"),
    (r"(?i:\([x'\-][._\-]?[x'\-]\))", "a smiley such as (x.x)"),
    (f",(?![ \t\n{QUOTES})0-9]|\\Z)", "a comma inside a word"),
    (f"[{L}0-9][!?][{L}0-9]", "a ! or ? inside a word"),
    (f"(?i:(?<![{L}0-9])(?:pro|anti)-(?![{L}0-9]))|(?i:-[lr][rcs]b-)", "a PTB special token"),
    (f"(?<![{L}0-9-])(?<![{L}0-9][{_APOS}])[A-Za-z]\\.[ \t\n]+(?![a-z0-9])",
     "a one-letter abbreviation before a capital"),
    (f"(?i:(?<![{L}0-9])(?:{_ABBR_BEFORE_NUMBER})\\.[ \t\n]*[-+(]?[0-9])", "an abbreviation before a number"),
    (f"(?i:cannot|gonna|gotta|lemme|gimme|wanna)[{_APOS}]", "a contraction after cannot/gonna"),
    (f"[{QUOTES}]{{2}}", "adjacent quote marks"),
    ("(?<=[^ \t\n])&|&(?=[^ \t\n])", "an & inside a word"),
]]


_ALNUM = re.compile(f"[{L}0-9]")
_LETTERS = re.compile(f"[{L}]*")


def _alnum_before(text: str, i: int) -> str:
    j = i
    while j > 0 and _ALNUM.match(text, j - 1):
        j -= 1
    return text[j:i]


def _apostrophe_ok(text: str, i: int) -> bool:
    """Apostrophes and single quotes in the forms we checked against Java."""
    prev, after = text[i - 1:i], text[i + 1:i + 2]
    before, word = _alnum_before(text, i), _LETTERS.match(text, i + 1).group()
    opening = len(word) >= 2 and not word.lower().startswith(_AFTER_QUOTE)
    if text[i] == "\u2018":  # only as an opening quote; inside words Java prints it as "`"
        return prev in _OPENERS and opening
    clitic = re.match(f"(?i:s|m|d|re|ve|ll)(?![{L}0-9{_APOS}\u2018])", text[i + 1:])
    if before:
        if clitic:
            return len(before) >= 2 or before in ("I", "i")
        if prev in "nN" and after in "tT" and not re.match(f"[{L}0-9{_APOS}\u2018]", text[i + 2:i + 3]):
            return before.isascii() and before.isalpha() and len(before) >= 2 and before[-2] not in "nN"
        return (after in _CLOSERS and before.isalpha() and len(before) >= 2
                and before.lower() not in _APOWORDS)
    if prev in _OPENERS:
        return bool(clitic) or (text[i] == "'" and bool(word) and opening)
    return prev in ".,;:!?)\"\u201d" and after in _CLOSERS


def _check(text: str) -> None:
    for pattern, why in _GUARDS:
        if m := pattern.search(text):
            raise _Outside(why, m.start())
    for m in re.finditer(f"[{_APOS}\u2018]", text):
        if not _apostrophe_ok(text, m.start()):
            raise _Outside("an apostrophe or single quote in an unchecked place", m.start())


def python_tokenize(captions: list[str]) -> list[str]:
    """The Java output, computed in Python; BenchError for text outside the checked subset."""
    if not captions:
        return []
    text = "\n".join(_LINE_BREAKS.sub(" ", c) for c in captions)
    try:
        _check(text)
        lines = _lex(text)
    except _Outside as e:
        where = text.count("\n", 0, e.args[1]) if len(e.args) > 1 else None
        which = f" caption {captions[where][:80]!r} has" if where is not None else " a caption has"
        raise BenchError(f"CIDEr needs Java for the PTB tokenizer (pycocoevalcap):{which} {e.args[0]}, "
                         f"which the pure-Python tokenizer does not reproduce; {NEEDS_JAVA}") from None
    return [_drop_punctuation(" ".join(tokens)) for tokens in lines]
