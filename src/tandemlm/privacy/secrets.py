"""Secrets assigned to a key that names one: in JSON, YAML, TOML, .env, INI, code, URLs, command lines, HTTP
headers, XML and connection strings.

`find_assigned_secrets(text)` yields a SECRET span over exactly the value, never the key or its quotes: a
quoted value ends at its closing quote (escapes and doubled quotes honoured, so `&`, `;` and spaces inside
stay in), a YAML block scalar (`|`, `>`) covers its indented lines, an unquoted one ends where its syntax ends
(whitespace, `;`/`,` before the next field, `&` before the next query parameter).

Precision rules (see `is_secret_key` and `_keep`):
- The key must name a secret by one of its parts (`db_password`, `PGPASSWORD`, `apiKey`, `X-Auth-Token`,
  `client_secret`, `Authorization`), not describe one (`max_tokens`, `token_count`, `password_policy`,
  `secret_name`, `--password-file`, `author`).
- A plain word key in running text (`my password: ...`, `the token is ...`) needs a value that looks like
  a secret (a digit, a symbol or inner capitals, four or more characters), so "the password is stored hashed"
  and "reset your password" mask nothing.
- Placeholders are not secrets and stay: nothing, `null`/`None`/`true`, `***`, `<redacted>`, `[REDACTED]`,
  `${DB_PASSWORD}`, `$TOKEN`, `%PW%`, `{{ vault }}`, `{token}`, `YOUR_API_KEY`, `...`. So is code that
  computes a value (`password = input()`, `token = args.token`, `f(password=pw)`) and a type annotation.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from tandemlm.privacy.spans import Span, span_at

#: Words that a key naming a secret contains (searched in the lower-cased text).
KEY_HINT = re.compile(
    r"pass|pwd|pw(?![a-z])|psw|mdp|secret|token|key|credential|auth|cookie|contrase|clave|senha|kennw|wachtw"
)
#: Cheap prefilter (substrings of the lower-cased text): a text without any of these has no secret here.
HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "cookie", "contrase", "clave", "senha",
         "kennw", "wachtw", "://", "identified", "mysql", "mariadb", "login", "curl", "wget", "pw", "pin", "mdp",
         "palavra", "sudo", "stdin", "chpasswd", "redis", "/user", "acces", "acess", "zugangscode", "toegangscode",
         "user", "usuario", "utilisateur", "identifiant", "benutzer", "utente", "gebruiker", "utilizador")  # fmt: skip
# `key = v`, `key: v`, `key := v`, `key => v`, and a type annotation: `KEY: str = v`, `key: Optional[str] = v`
SEP = re.compile(
    r"[ \t]*(?:(?P<ann>:[ \t]*[A-Za-z_][\w.]*(?:\[[\w\[\], .|]*])?(?:[ \t]*\|[ \t]*[A-Za-z_][\w.]*)*[ \t]+=(?![=>~]))"
    r"|(?P<sep>:=|=>|=(?![=~])|:(?![:/\\])))[ \t]*"
)
PROSE_SEP = re.compile(r"[ \t]+(?:is|es|est|ist|lautet|è|é|:)[ \t]+", re.IGNORECASE)
FLAG_SEP = re.compile(r"=|[ \t]+(?=[^\s-])")

#: Parts of a key that name a secret on their own.
SECRET_WORDS = frozenset(
    ["password", "passwd", "pwd", "pass", "passphrase", "passcode", "secret", "secrets", "token", "credential",
     "credentials", "creds", "apikey", "auth", "authorization", "cookie", "privatekey", "accesskey", "secretkey",
     "contraseña", "contrasena", "clave", "senha", "passwort", "kennwort", "wachtwoord", "motdepasse", "pw", "pswd",
     "psw", "pword", "mdp"]
)  # fmt: skip
#: Two adjacent parts that together name a secret (`api_key`, `private-key`, `accessKey`).
SECRET_PAIRS = frozenset(
    [("api", "key"), ("private", "key"), ("access", "key"), ("signing", "key"), ("encryption", "key"),
     ("master", "key"), ("subscription", "key"), ("app", "key"), ("session", "key"), ("mot", "passe")]
)  # fmt: skip
# glued spellings inside one part (PGPASSWORD, xapikey, authtoken, jwtsecret)
GLUED = re.compile(
    r"passw(?:or)?d|passphrase|secret(?!ar|ion|ive)|credential|apikey|privatekey|accesskey|token$|pwd$"
    r"|contrase|passwort|kennwort|wachtwoord",
)
# spellings split over several parts: mot_de_passe, parola_d_ordine, pass_phrase
GLUED_WORDS = re.compile(r"motdepasse|paroladordine|passphrase|passcode|contrasena|palavrapasse")
#: A last part that makes the key describe a secret instead of holding one.
META_LAST = frozenset(
    ["type", "types", "count", "counts", "length", "len", "size", "limit", "limits", "id", "ids", "name", "names",
     "url", "uri", "endpoint", "file", "filename", "path", "dir", "policy", "policies", "expiry", "expires",
     "expiration", "ttl", "timeout", "lifetime", "age", "algorithm", "algo", "method", "methods", "mode",
     "required", "enabled", "disabled", "field", "fields", "label", "prompt", "hint", "prefix", "format",
     "strength", "rules", "regex", "pattern", "version", "provider", "scheme", "scope", "scopes", "usage",
     "changed", "updated", "created", "at", "rotation", "manager", "env", "var", "index", "idx", "kind", "stdin",
     "ref", "arn", "source", "location", "level", "budget", "rate", "cost", "price", "per", "window", "total",
     "min", "max", "chars", "reset", "store", "backend", "class", "style", "list", "map", "only", "less", "ok",
     "valid", "invalid", "error", "errors", "status", "state", "flow", "mechanism", "server", "service", "host",
     "port", "user", "username", "login", "email", "domain", "realm", "audience", "issuer"]
)  # fmt: skip
#: A first part that makes the key a setting about secrets (`max_tokens`, `no-password`, `use_auth`).
META_FIRST = frozenset(
    ["no", "max", "min", "num", "n", "total", "is", "has", "use", "enable", "enabled", "disable", "show", "ask",
     "require", "requires", "allow", "prompt", "skip", "check", "validate", "verify", "forgot", "reset"]
)  # fmt: skip
AUTH_HEADERS = frozenset(["authorization", "proxy-authorization"])
COOKIE_HEADERS = frozenset(["cookie", "set-cookie"])
AUTH_SCHEMES = re.compile(
    r"(?:Bearer|Basic|Token|Bot|Digest|Negotiate|NTLM|ApiKey|Api-Key|JWT|HMAC|OAuth|SharedKey|SSWS|sso-key"
    r"|AWS4-HMAC-SHA256|AWS|GoogleLogin|Key|Splunk|DSN)[ \t]+",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(
    r"""(?ix)(?:
      |null|none|nil|nul|undefined|true|false|yes|no|on|off|~|n/?a|tbd|todo|empty|unset|default|required|optional
      |[*xX•·.#_-]{3,}|…|\*+
      |<[^<>]*>|\[[^\[\]]*]|\((?:redacted|hidden|removed|omitted|masked|secret)\)
      |redacted|hidden|removed|omitted|masked|placeholder|sensitive|not[ _-]?set
      |(?:your|insert|enter|replace|put|paste)(?:[ _.-]\w+)+
      |[\w-]*[_-]here
      |str|string|String!?|int|bytes|bool|SecretStr|SecretBytes|Optional\[\w+]|Any|text|varchar(?:\(\d+\))?
    )""",
)
# template fields: ${X} {{ x }} {% x %} {x} %(x)s $X $(cmd) %X% #{x} @x@
TEMPLATE_FIELD = re.compile(
    r"\$\{[^}]*}|\{\{.*?}}|\{%.*?%}|\{[A-Za-z_][\w.\[\]'\"]*(?:![rsa])?(?::[^}]*)?}|%\(\w+\)[sdr]|\$\(?[A-Za-z_]\w*\)?"
    r"|%[A-Za-z_]\w*%|#\{[^}]*}|@[A-Za-z_]\w*@"
)
CODE_OBJECTS = frozenset(
    ["self", "this", "cls", "args", "opts", "options", "config", "cfg", "conf", "settings", "os", "process", "env",
     "params", "request", "req", "ctx", "context", "data", "app", "secrets", "credentials", "vault", "window"]
)  # fmt: skip
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")
PLAIN_WORD = re.compile(r"[A-Za-zÀ-ÿ][a-zà-ÿ']*")
CODE_CUES = re.compile(
    r"^[ \t]*(?:def |class |import |from [\w.]+ import |function |const |let |var |return\b|async |public |private "
    r"|func |package |fn |#include|using |@\w+)",
    re.MULTILINE,
)
CONFIG_LINE = re.compile(r"^[ \t]*(?:-[ \t]+|export[ \t]+)?[\"']?[\w.-]+[\"']?[ \t]*[:=]", re.MULTILINE)
BLOCK = re.compile(r"(?:![\w!]*[ \t]+)?[|>][1-9]?[+-]?[1-9]?[ \t]*(?:#[^\n]*)?(?=\n|$)")
LINE_PREFIX = re.compile(
    r"^[ \t]*(?:-[ \t]+|export[ \t]+|set[ \t]+|setx[ \t]+|ENV[ \t]+|\$env:|(?:const|let|var|my|our|local|readonly"
    r"|declare(?:[ \t]+-\w+)?|final|static|private|public|protected)[ \t]+(?:[\w.<>\[\]]+[ \t]+)?)?$"
)

# command lines whose -p is a password, URLs with user:password@, and other fixed shapes
VALUE = r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"'|;&]+))"
# each with the lower-case words one of which a text must hold for the pattern to be tried
COMMANDS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("mysql", "mariadb"), re.compile(rf"\b(?:mysql\w*|mariadb[\w-]*)\b[^\n|;&]*?[ \t]-p(?!\s){VALUE}")),
    (("sshpass",), re.compile(rf"\bsshpass\b(?:[ \t]+-[a-oq-zA-Z]\S*)*[ \t]+-p[ \t]*{VALUE}")),
    (
        ("login",),
        re.compile(rf"\b(?:docker|podman|nerdctl|buildah|skopeo|oras)[ \t]+login\b[^\n|;&]*?[ \t]-p[ \t]+{VALUE}"),
    ),
    (
        ("curl", "wget", "http"),
        re.compile(
            r"\b(?:curl|wget|http|https)\b[^\n|;]*?[ \t](?:-u|--user|--proxy-user|-U)(?:[ \t]+|=)"
            r"[\"']?[^\s:\"']*:(?P<bare>[^\s\"']+)"
        ),
    ),
    (("redis",), re.compile(rf"\bredis-cli\b[^\n|;&]*?[ \t]-a[ \t]+{VALUE}")),
    (("auth",), re.compile(rf"(?i)\bredis\b[^\n]*?\bAUTH[ \t]+(?:\S+[ \t]+(?=\S))?{VALUE}")),  # AUTH [user] pass
    (
        ("sudo", "stdin", "chpasswd"),
        re.compile(
            r"\b(?:echo|printf)[ \t]+(?:-[ne][ \t]+)?(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"'|;&]+))"
            r"[ \t]*\|[ \t]*(?:sudo[ \t]+-S|[^\n|;]*--password-stdin|[^\n|;]*passwd[ \t]+--stdin|chpasswd)"
        ),
    ),
    (("htpasswd",), re.compile(rf"\bhtpasswd[ \t]+-\w*b\w*[ \t]+(?:-\w+[ \t]+)*\S+[ \t]+\S+[ \t]+{VALUE}")),
    (("net use", "/user"), re.compile(rf"(?i)\bnet[ \t]+use\b[^\n]*?/user:\S+[ \t]+(?!/){VALUE}")),
    (("machine",), re.compile(r"\bmachine[ \t]+\S+[ \t]+login[ \t]+\S+[ \t]+password[ \t]+(?P<bare>\S+)")),  # .netrc
    (
        ("identified", "password"),
        re.compile(rf"(?i)\b(?:identified[ \t]+by|with[ \t]+(?:encrypted[ \t]+)?password)[ \t]+{VALUE}"),
    ),
)
# "login: admin / Shadow1999!": a user, a slash, and (if it looks like one) the password
LOGIN_PAIR = re.compile(
    r"(?i)(?<![\w/:.])(?:login|user(?:name)?|usuario|utilisateur|identifiant|benutzer(?:name)?|utente"
    r"|gebruiker(?:snaam)?|utilizador)[ \t]*[:=][ \t]*[^\s/@:]+(?:[ \t]+/[ \t]*|[ \t]*/[ \t]+)(?P<bare>[^\s\"']+)"
)
LOGIN_WORDS = (
    "login",
    "user",
    "usuario",
    "utilisateur",
    "identifiant",
    "benutzer",
    "utente",
    "gebruiker",
    "utilizador",
)
# calls that carry a secret as a string literal: put("password", "v"), getenv("DB_PASSWORD", "v"),
# setPassword("v"), login("user", "v"), HTTPBasicAuth(user, "v")
_LIT = r"(?P<q{n}>[\"'])(?P<{g}>(?:\\.|(?!(?P=q{n}))[^\\\n])*)(?P=q{n})"
KEY_ARG = re.compile(rf"(?<=[(,])[ \t]*(?={_LIT.format(n=1, g='k')}[ \t]*,[ \t]*{_LIT.format(n=2, g='v')}[ \t]*[),])")
SETTER = re.compile(rf"(?<!\w)(?P<k>[A-Za-z_]\w*)[ \t]*\([ \t]*{_LIT.format(n=1, g='v')}[ \t]*\)")
SETTER_VERBS = frozenset(["set", "with", "use", "update", "change", "reset", "new", "hash", "encrypt", "store", "save"])
LOGIN_CALL = re.compile(
    rf"\b(?:login|log_in|logon|signin|sign_in|authenticate|basic_auth|HTTPBasicAuth|HTTPDigestAuth|BasicAuth"
    rf"|UsernamePasswordCredentials|NetworkCredential|PasswordAuthentication)[ \t]*\([ \t]*"
    rf"(?:{_LIT.format(n=1, g='u')}|[\w.]+)[ \t]*,[ \t]*{_LIT.format(n=2, g='v')}",
    re.IGNORECASE,
)
URL_AUTHORITY = re.compile(r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]*://(?P<auth>[^\s/?#\"'<>]*@)")
XML_ELEMENT = re.compile(r"<(?P<tag>[\w:.-]+)(?:\s[^<>]*)?>(?P<v>[^<>]+)</(?P=tag)>")
APP_SETTING = re.compile(r"\bkey\s*=\s*\"(?P<k>[^\"]+)\"\s+value\s*=\s*\"(?P<v>[^\"]*)\"")
AUTH_TUPLE = re.compile(r"\(\s*(?P<q1>[\"'])[^\"'\n]*(?P=q1)\s*,\s*(?P<q2>[\"'])(?P<v>[^\"'\n]*)(?P=q2)\s*\)")


def parts(key: str) -> list[str]:
    """The words of a key, lower-cased: `DB_PASSWORD` → db, password; `xApiKey` → x, api, key."""
    return [p.lower() for p in re.findall(r"[A-Z]?[a-zà-ÿñ]+|[A-Z]+(?![a-z])|\d+", key)]


def is_secret_key(key: str) -> bool:
    """Whether a key names a secret (`db_password`, `apiKey`, `X-Auth-Token`) rather than a setting about one
    (`max_tokens`, `password_policy`, `secret_name`) or another word that contains one (`author`, `keyboard`)."""
    words = parts(key)
    if not words or words[-1] in META_LAST or (len(words) > 1 and words[0] in META_FIRST):
        return False
    if any(w in SECRET_WORDS for w in words) or any(p in SECRET_PAIRS for p in itertools.pairwise(words)):
        return True
    return any(GLUED.search(w) for w in words) or bool(GLUED_WORDS.search("".join(words)))


# in prose, a secret word, up to four words about it, then "is"/"es"/"est"/"ist"/"è"/"é"/":" and the value:
# "la contraseña del router es Fussball2012%", "the wifi password for guests is P@ss!"
PROSE_SECRET = re.compile(
    r"(?i:\b(?:password|passwort|passphrase|passcode|passwd|pwd|pw|pin|codigo de acesso|código de acesso"
    r"|código de acceso|codigo de acceso|code d'accès|code d’accès|zugangscode|codice di accesso|toegangscode"
    r"|contraseña|contrasena|clave|mot de passe|mdp"
    r"|wachtwoord|senha|palavra-passe|kennwort|parola d'ordine|token|api key|access key|secret key))(?![\w])"
    r"(?:[ \t]+[^\W\d][\w'’-]*){0,4}?"
    r"(?:[ \t]+(?i:is|es|est|ist|lautet|è|é|e|era|was|c'est|c’est|it's|zijn|sind)(?![\w])|[ \t]*[:=(\-–—]"
    r"|[ \t](?=[^\s\d]*\d))"  # or a bare space before a value with a digit
    r"[ \t]*[:\"'“«]?[ \t]*"
    r"(?P<v>[^\s\"'”»]+)"
)


def find_prose_secrets(text: str) -> Iterator[Span]:
    """Secrets named in a sentence: the value after a secret word and a copula, if it looks like one."""
    for m in PROSE_SECRET.finditer(text):
        value = m["v"]
        if len(value) > 1 and value[-1] in ".,;:" and text[m.end() : m.end() + 1] in ("", " ", "\n", "\t"):
            value = value[:-1]  # the sentence's punctuation, not the password's
        if value.endswith(")") and m.group().count("(") == 1:
            value = value[:-1]  # "the password (Sunshine1987!) expires"
        if any(c in value for c in "()[]{}<>") or DOTTED.fullmatch(value) or re.match(r"[/~]|[A-Za-z]:\\", value):
            continue  # code: `token: str)`, `password: Optional[str]`, `token: self.token`
        if _keep(value, quoted=False, strict=True):
            yield span_at(text, m.start("v"), m.start("v") + len(value), "SECRET", score=0.8)


def find_assigned_secrets(text: str) -> Iterator[Span]:
    """Values assigned to keys that name a secret, and the fixed shapes: `-p` of mysql/sshpass/docker login,
    `curl -u user:pass`, `scheme://user:pass@host`, .netrc, SQL `IDENTIFIED BY`, XML and .NET app settings."""
    low = text.lower()
    if len(low) != len(text):  # a few characters lower-case to two ("İ"): keep the offsets
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    if not any(hint in low for hint in HINTS):
        return
    scan = _Scan(text)
    found: list[Span] = []
    for quote, start, end in _keys(text, low):
        if is_secret_key(text[start:end]):
            span = scan.assignment(quote, start, end)
            if span is not None:
                found.append(span)
    found += _fixed_shapes(text, low)
    yield from found
    for span in find_prose_secrets(text):  # what the key grammar missed: "the router's password is ..."
        if not any(span.overlaps(other) for other in found):
            yield span


def _keys(text: str, low: str) -> Iterator[tuple[str, int, int]]:
    """Each identifier-like run (letters, digits, `_.-`) that holds a hint word, with the quote before it."""
    done = 0
    for hint in KEY_HINT.finditer(low):
        if hint.start() < done:
            continue  # another hint inside a key already read (auth_token)
        start, end = hint.start(), hint.end()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            start -= 1
        while end < len(text) and (text[end].isalnum() or text[end] in "_.-"):
            end += 1
        done = end
        while text[start] == "-":  # --password: the key is the word after the dashes
            start += 1
        if not (text[start].isalpha() or text[start] == "_") or text[start - 1 : start] == ".":
            continue
        if text[start - 1 : start] == "$" and not re.match(r"[\w]*[ \t]*=(?![=~])", text[start:]):
            continue  # $PASSWORD read, not assigned (Perl and PHP assign `$pass = "..."`)
        quote = text[start - 2 : start] if text[start - 2 : start] in ('\\"', "\\'") else text[start - 1 : start]
        quote = quote if quote and quote[-1] in "\"'`" else ""
        ahead = text[start - len(quote) - 1 : start - len(quote)]  # what precedes the key and its quote
        if not ahead or not (ahead.isalnum() or ahead in ("_", ".")):
            yield quote, start, end


def _fixed_shapes(text: str, low: str) -> Iterator[Span]:
    for needles, regex in COMMANDS:
        if not any(n in low for n in needles):
            continue
        for m in regex.finditer(text):
            group = next(g for g in ("dq", "sq", "bare") if regex.groupindex.get(g) and m[g] is not None)
            if _keep(m[group], quoted=group != "bare"):
                yield span_at(text, m.start(group), m.end(group), "SECRET", score=0.9)
    for m in URL_AUTHORITY.finditer(text) if "://" in text else ():
        last_at = m.end("auth") - 1  # the password may hold an unescaped @: the host follows the last one
        user, colon, password = text[m.start("auth") : last_at].partition(":")
        if colon and password and not TEMPLATE_FIELD.fullmatch(password) and not PLACEHOLDER.fullmatch(password):
            start = m.start("auth") + len(user) + 1
            yield span_at(text, start, last_at, "SECRET", score=0.9)
    if "</" in text:
        for m in XML_ELEMENT.finditer(text):
            value = m["v"].strip()
            if is_secret_key(m["tag"].rpartition(":")[2]) and _keep(value, quoted=True):
                start = m.start("v") + m["v"].index(value)
                yield span_at(text, start, start + len(value), "SECRET", score=0.9)
    yield from _calls(text)
    for m in LOGIN_PAIR.finditer(text) if "/" in text and any(w in low for w in LOGIN_WORDS) else ():
        if _keep(m["bare"], quoted=False, strict=True):
            yield span_at(text, m.start("bare"), m.end("bare"), "SECRET", score=0.8)
    for m in APP_SETTING.finditer(text) if "value" in low else ():
        if is_secret_key(m["k"]) and _keep(m["v"], quoted=True):
            yield span_at(text, m.start("v"), m.end("v"), "SECRET", score=0.9)


def _calls(text: str) -> Iterator[Span]:
    """String literals passed as secrets: after a key literal naming one, to a setter of one, or to a login."""
    if "(" not in text:
        return
    for m in KEY_ARG.finditer(text):
        if is_secret_key(m["k"]) and _keep(m["v"], quoted=False, strict=True):
            yield span_at(text, m.start("v"), m.end("v"), "SECRET", score=0.9)
    for m in SETTER.finditer(text):
        words = parts(m["k"])
        if (
            len(words) >= 2
            and words[0] in SETTER_VERBS
            and is_secret_key("_".join(words[1:]))
            and _keep(m["v"], quoted=False, strict=True)
        ):
            yield span_at(text, m.start("v"), m.end("v"), "SECRET", score=0.9)
    for m in LOGIN_CALL.finditer(text):
        if _keep(m["v"], quoted=False, strict=True):
            yield span_at(text, m.start("v"), m.end("v"), "SECRET", score=0.9)


class _Scan:
    """One text's assignments; what is costly to know about the whole text is computed once, on demand."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._code: bool | None = None
        self._config: bool | None = None

    @property
    def code(self) -> bool:
        """The text reads as source code, where a bare identifier after `=` is a variable, not a literal."""
        if self._code is None:
            self._code = bool(CODE_CUES.search(self.text))
        return self._code

    @property
    def config(self) -> bool:
        """The text holds several `key: value` / `key = value` lines, where a value runs to the end of its line."""
        if self._config is None:
            self._config = len(CONFIG_LINE.findall(self.text)) >= 2
        return self._config

    def assignment(self, quote: str, start: int, pos: int) -> Span | None:
        """The value assigned to the key text[start:pos] (`quote` is the quote before the key, if any)."""
        text, key = self.text, self.text[start:pos]
        quoted_key = bool(quote) and text.startswith(quote, pos)
        if quoted_key:
            pos += len(quote)
            if text.startswith("]", pos):  # environ["DB_PASSWORD"] = ...
                pos += 1
        line_start = text.rfind("\n", 0, start) + 1
        before = text[line_start : start - len(quote)].removesuffix("$")
        flag = text[max(0, start - 2) : start] == "--" or (text[start - 1 : start] == "-" and before.endswith(" -"))
        at_line_start = bool(LINE_PREFIX.match(before))
        structural = quoted_key or at_line_start or flag or before.rstrip()[-1:] in ("{", ",", ";", "&", "?", "(", "[")
        plain = bool(PLAIN_WORD.fullmatch(key)) and not quoted_key
        strict = plain and not structural
        url_param = before[-1:] in ("?", "&")
        kwarg = before.rstrip()[-1:] in ("(", ",")

        sep = (FLAG_SEP if flag else SEP).match(text, pos)
        if sep is None and plain:
            sep, strict = PROSE_SEP.match(text, pos), True
        if sep is None:
            return None
        value_at = sep.end()
        if quoted_key and quote == '\\"' and text.startswith('\\"', value_at):
            return self._quoted(value_at, r'\\"(?P<v>(?:\\\\\\"|[^"\n])*?)\\"')
        if not flag and sep.group().strip() == ":" and (block := BLOCK.match(text, value_at)):
            return self._block(line_start, block.end())
        for opener, regex in QUOTED:
            if text.startswith(opener, value_at) or (
                text[value_at : value_at + 1] in "rRbBuUfF@" and text.startswith(opener, value_at + 1)
            ):
                return self._quoted(value_at + (not text.startswith(opener, value_at)), regex)
        if text.startswith("{", value_at) and sep.group().strip() == "=" and ";" in text[value_at : value_at + 200]:
            return self._quoted(value_at, r"\{(?P<v>(?:[^}\n]|}})*)}")  # ODBC: PWD={a;b};
        if text.startswith("(", value_at) and "auth" in key.lower():
            pair = AUTH_TUPLE.match(text, value_at)  # requests: auth=("user", "pass")
            return span_at(text, pair.start("v"), pair.end("v"), "SECRET", score=0.9) if pair and pair["v"] else None
        return self._unquoted(key, value_at, strict=strict, url_param=url_param, line_start=at_line_start,
                              identifier_is_code=quoted_key or kwarg or self.code, flag=flag)  # fmt: skip

    def _quoted(self, at: int, regex: str) -> Span | None:
        q = re.compile(regex).match(self.text, at)
        if q is None or not _keep(q["v"], quoted=True):
            return None
        return span_at(self.text, q.start("v"), q.end("v"), "SECRET", score=0.9)

    def _block(self, line_start: int, header_end: int) -> Span | None:
        """A YAML block scalar: the lines after `key: |` indented deeper than the key."""
        text = self.text
        indent = len(text[line_start:]) - len(text[line_start:].lstrip(" \t"))
        first = last = None
        pos = header_end + 1
        while pos < len(text):
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            line = text[pos:end]
            if line.strip():
                if len(line) - len(line.lstrip(" \t")) <= indent:
                    break
                first = pos + len(line) - len(line.lstrip(" \t")) if first is None else first
                last = pos + len(line.rstrip())
            pos = end + 1
        if first is None or last is None or not _keep(text[first:last], quoted=True):
            return None
        return span_at(text, first, last, "SECRET", score=0.9)

    def _unquoted(self, key: str, at: int, *, strict: bool, url_param: bool, line_start: bool,
                  identifier_is_code: bool, flag: bool) -> Span | None:  # fmt: skip
        text = self.text
        rest = re.match(r"(?:[^\n\"'`\\]|\\.)*", text[at:])
        line = rest.group().rstrip() if rest else ""
        lower = key.lower()
        scheme = AUTH_SCHEMES.match(line) if lower in AUTH_HEADERS or "auth" in parts(key) else None
        if lower in COOKIE_HEADERS and "=" in line:
            value = line  # a=1; session=...: the whole header
        elif scheme:  # Authorization: Bearer <credentials>; the scheme is no secret
            at, value = at + scheme.end(), line[scheme.end() :]
        elif line_start and self.config and not flag and not strict:
            value = re.split(r"[ \t]+[#;]|[ \t]+//", line, maxsplit=1)[0].rstrip().removesuffix(",")
        else:
            token = re.match(r"(?:[^\s\"'`\\]|\\\S)*", text[at:])  # an escaped quote is inside: p@ss\"x\"55
            value = _cut(token.group() if token else "", url_param)
            value = value.rstrip(".,;:?") if strict else value
            if PLAIN_WORD.fullmatch(value) and re.match(r"[ \t]+[a-zà-ÿ]", text[at + len(value) :]):
                return None  # "Password: click the link below" reads as prose
        if not _keep(value, quoted=False, strict=strict) or (not scheme and _is_code(value, key, identifier_is_code)):
            return None
        if key.upper() in ("PWD", "OLDPWD") and re.match(r"[/~]|[A-Za-z]:\\", value):
            return None  # the shell's working directory, not a password
        return span_at(text, at, at + len(value), "SECRET", score=0.8 if strict else 0.9)


QUOTED = (
    ('"""', r'"""(?P<v>[\s\S]*?)"""'),
    ("'''", r"'''(?P<v>[\s\S]*?)'''"),
    ('"', r'"(?P<v>(?:[^"\\\n]|\\.)*)"'),
    ("'", r"'(?P<v>(?:[^'\\\n]|\\.|'')*)'"),
    ("`", r"`(?P<v>[^`]*)`"),
)


def _cut(token: str, url_param: bool) -> str:
    """An unquoted token up to where its syntax ends: the next query parameter, connection-string field,
    list item, or an unbalanced closing bracket."""
    token = re.split(r"&(?=[\w.-]+=)|#" if url_param else r"&(?=[\w.-]+=)", token, maxsplit=1)[0]
    token = re.split(r";(?=[\w .-]+=|$)|,(?=$)", token, maxsplit=1)[0]
    while token and (token[-1] in ":,;" or (token[-1] in ")]}>" and token.count(token[-1]) > token.count(
        "([{<"[")]}>".index(token[-1])]))):  # fmt: skip
        token = token[:-1]
    return token


def _keep(value: str, *, quoted: bool, strict: bool = False) -> bool:
    """Whether a value is a secret rather than a placeholder, an empty value, or (when `strict`) a word."""
    stripped = value.strip()
    if not stripped or PLACEHOLDER.fullmatch(stripped):
        return False
    unscheme = AUTH_SCHEMES.sub("", stripped, count=1)
    if not re.sub(r"[\W_]", "", TEMPLATE_FIELD.sub("", unscheme)) or PLACEHOLDER.fullmatch(unscheme.strip()):
        return False  # nothing but template fields and punctuation: "${DB_PASSWORD}", "Bearer {token}"
    if strict:
        secretish = re.search(r"\d|[^\w\s]|\w[A-Z]", stripped) is not None
        return len(stripped) >= 4 and secretish and " " not in stripped
    return quoted or len(stripped) >= 3


def _is_code(value: str, key: str, identifier_is_code: bool) -> bool:
    """An unquoted value that is an expression: a call, an index, an attribute, or (in code) a variable."""
    if any(c in value for c in "([{"):
        return True
    if DOTTED.fullmatch(value):  # self.password, args.token, process.env.API_KEY; not a dotted token like a JWT
        first, *_, last = value.split(".")
        return identifier_is_code or first.lower() in CODE_OBJECTS or bool(set(parts(last)) & set(parts(key)))
    if IDENTIFIER.fullmatch(value):
        same = value.lower().strip("_$") in (key.lower(), *parts(key))
        return same or identifier_is_code
    return False
