"""Secrets assigned to keys that name one: the whole value and nothing else, in each syntax; placeholders, code
and prose look-alikes left alone."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.secrets import find_assigned_secrets, is_secret_key


def values(text: str) -> list[str]:
    spans = list(find_assigned_secrets(text))
    assert all(text[s.start : s.end] == s.text and s.entity == "SECRET" for s in spans)
    return [s.text for s in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # JSON: the value with its escapes, never the key or the quotes; & ; and spaces inside stay in
        ('{"db_password": "Tr0ub4dor&3xK!", "user": "bob"}', ["Tr0ub4dor&3xK!"]),
        ('{"password": "pa\\"ss word;x", "n": 1}', ['pa\\"ss word;x']),
        ('{"token_type": "bearer", "access_token": "at-9f8e7d", "expires_in": 3600}', ["at-9f8e7d"]),
        ('{"password": 123456}', ["123456"]),
        ('"{\\"password\\": \\"abc\\\\\\"def\\", \\"u\\": 1}"', ['abc\\\\\\"def']),  # JSON inside a JSON string
        # YAML: plain, quoted (doubled quote), block scalars | and >-, a passphrase with spaces in a config
        ("db:\n  host: x\n  password: s3cr3t\n", ["s3cr3t"]),
        ("password: 'it''s yaml'\n", ["it''s yaml"]),
        ("db:\n  password: |\n    line one\n    line two\n  user: x\n", ["line one\n    line two"]),
        ("db:\n  token: >-\n    folded\n    text\nnext: 1", ["folded\n    text"]),
        ("passphrase: correct horse battery staple\nuser: bob", ["correct horse battery staple"]),
        ('db:\n  password: "quoted # not a comment"  # a comment\n', ["quoted # not a comment"]),
        # TOML, INI, .env
        ("[database]\npassword = \"toml secret\"\napi_key = 'single'\n", ["toml secret", "single"]),
        ('api_key = """multi\nline"""', ["multi\nline"]),
        ("[client]\nuser = root\npassword = my ini pass ; comment\n", ["my ini pass"]),
        ('export DB_PASSWORD=hunter2 # comment\nAPI_TOKEN="abc def"\n', ["hunter2", "abc def"]),
        ("PGPASSWORD=s3cret psql -h db -U app", ["s3cret"]),
        # Python / JS assignments, typed, and requests' auth tuple
        ("db_password = \"s3cret\"\nDB_PASSWORD: str = 'typed'\n", ["s3cret", "typed"]),
        ("const apiKey = 'js-k3y';", ["js-k3y"]),
        ('requests.get(url, auth=("bob", "b0bpass"))', ["b0bpass"]),
        # URLs: user:password@ (an unescaped @ inside), query parameters, any scheme
        ("clone postgresql://admin:p@ss:w0rd@db.example.com:5432/app", ["p@ss:w0rd"]),
        ("mongodb+srv://user:Mongo123@cluster0.x.mongodb.net/?retryWrites=true", ["Mongo123"]),
        ("redis://:r3dis@cache:6379/0", ["r3dis"]),
        ("jdbc:mysql://db:3306/app?user=app&password=jd8cPw&ssl=true", ["jd8cPw"]),
        # command lines
        ("mysql -u root -pS3cr3t! mydb", ["S3cr3t!"]),
        ("mysqldump -u root -p'two words' db", ["two words"]),
        ('myapp --password=hunter22 --db-password "two words" --token abc123', ["hunter22", "two words", "abc123"]),
        ("sshpass -p Sup3r ssh host", ["Sup3r"]),
        ("docker login -u me -p dockpw registry.example.com", ["dockpw"]),
        ("curl -u bob:curlpw https://x.example.com", ["curlpw"]),
        ("kubectl create secret generic db --from-literal=password=kub3pw", ["kub3pw"]),
        # HTTP headers: the credentials after the scheme, a cookie header whole
        (
            "curl -H \"Authorization: Bearer eyJabc.def\" -H 'X-Api-Key: k3y-value' https://x",
            ["eyJabc.def", "k3y-value"],
        ),
        ("Authorization: Basic dXNlcjpwYXNz\n", ["dXNlcjpwYXNz"]),
        ("Cookie: sessionid=abc123; theme=dark\n", ["sessionid=abc123; theme=dark"]),
        ("X-Auth-Token: tok999\nOcp-Apim-Subscription-Key: 0123abcd", ["tok999", "0123abcd"]),
        # connection strings: ADO (a ; inside the value), ODBC braces
        ("Server=db;Database=app;User Id=sa;Password=myP@ss;word;Trusted_Connection=no", ["myP@ss;word"]),
        # inside a C# or Java string literal, with escaped quotes in the value
        ('var cs = "Server=db;Password=Pa\\"ss\\"1999;Pooling=true";', ['Pa\\"ss\\"1999']),
        ("Driver={SQL Server};Server=x;PWD={a;b}};c};", ["a;b}};c"]),
        # XML, .NET app settings, SQL, .netrc, prose with a secret-looking value
        ("<password>xmlpw</password>", ["xmlpw"]),
        ('<add key="DbPassword" value="appset"/>', ["appset"]),
        ("CREATE USER bob IDENTIFIED BY 'sqlpw';", ["sqlpw"]),
        ("machine api.example.com login bob password netrcpw", ["netrcpw"]),
        ("password: s3cr3tPass! ok", ["s3cr3tPass!"]),
        ("my password is hunter2.", ["hunter2"]),
        ("mi contraseña es Hola1234", ["Hola1234"]),
        # calls that carry a secret literal: a key literal, a setter, a login; the default of a secret env var
        ('props.put("password", "Shadow2002!");', ["Shadow2002!"]),
        ('config.set("db", "password", "Hunter2000&x")', ["Hunter2000&x"]),
        ('password = os.getenv("DB_PASSWORD", "Fallback1999!")', ["Fallback1999!"]),
        ('user.setPassword("Batman1998!");', ["Batman1998!"]),
        ('builder.with_password("Qwerty1977!")', ["Qwerty1977!"]),
        ('smtp.login("me@x.com", "Shadow1999!")', ["Shadow1999!"]),
        ('assert login(user, "Winter1999!")', ["Winter1999!"]),
        # Perl/PHP variables, C# verbatim strings, short key words
        ('my $pass = "Letmein1999?";', ["Letmein1999?"]),
        ('var pwd = @"Welcome1999!";', ["Welcome1999!"]),
        ('admin_pw = "Football1999!"', ["Football1999!"]),
        # command lines
        ("redis-cli -a Winter1999! ping", ["Winter1999!"]),
        ("redis 127.0.0.1:6379> AUTH default Autumn2020!", ["Autumn2020!"]),
        ("INFO redis client: sent AUTH Gr33n-Tea", ["Gr33n-Tea"]),
        ('echo "Sunshine1999!" | sudo -S apt update', ["Sunshine1999!"]),
        ("printf 'Tr0ub4dor&3xK!' | docker login -u bob --password-stdin", ["Tr0ub4dor&3xK!"]),
        ("htpasswd -b .htpasswd bob Shadow2001!", ["Shadow2001!"]),
        # e-mail prose in seven languages, and a login / password pair
        ("pwd Hunter2011!", ["Hunter2011!"]),
        ("New password — Trustno1980#", ["Trustno1980#"]),
        ("login: admin / Shadow1999!", ["Shadow1999!"]),
        ("o seu código de acesso é Verano1990!", ["Verano1990!"]),
        ("Bonjour, le mot de passe : Amore1999@", ["Amore1999@"]),
        ("Hallo, das Passwort lautet Fussball2012%.", ["Fussball2012%"]),
        ("Ciao, la password è Amore2001! per il wifi.", ["Amore2001!"]),
        ("Hoi, het wachtwoord is Sommer2003&.", ["Sommer2003&"]),
        ("Olá, a senha é Verano1990! para o portal.", ["Verano1990!"]),
    ],
)
def test_the_whole_value_is_the_span(text: str, expected: list[str]) -> None:
    assert values(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # prose
        "the password is stored hashed",
        "reset your password",
        "token bucket algorithm",
        "secret santa",
        "Password: click the link below to choose a new one",
        "Your token: expires in 5 minutes",
        "the secret: be kind",
        "use the --token flag to log in",
        "Authorization: the process of granting access",
        "cookie: chocolate chip",
        # placeholders
        "password: ",
        "password:",
        "password: null",
        'password: ""',
        "password: ***",
        "password: <redacted>",
        "password: [REDACTED]",
        "password: ${DB_PASSWORD}",
        "password: $DB_PASSWORD",
        'password: "{{ vault_db_password }}"',
        'password: "%(pw)s"',
        "api_key: YOUR_API_KEY",
        "token: <your-token-here>",
        "    token: ${{ secrets.GITHUB_TOKEN }}\n",
        'password = "••••••"',
        '"password": "", "token": null',
        'requests.get(url, headers={"Authorization": f"Bearer {token}"})',
        # code that computes or passes a value, and type annotations
        "def login(user, password=None):\n    token = get_token(user)\n    password = password.strip()\n",
        'token = tokens[i]\nsecret = 42\npassword = input("Password: ")',
        'secret = os.environ["S"]\napi_key = settings.API_KEY',
        "DB_PASSWORD: Optional[str] = None\ntoken: str\n",
        'headers = {"X-Api-Key": api_key}',
        "requests.get(url, auth=(user, pw))",
        # keys that describe a secret
        '"max_tokens": 256, "token_count": 3, "password_policy": "strict"',
        "secret_name: my-k8s-secret\n--password-file /run/secrets/db --password-stdin --no-password x",
        "authorization_url: https://x/auth\nauth_method: basic\nauthor: Jane Austen\n",
        "PWD=/home/bob",
        # look-alikes of the new shapes: field lists, reads of a variable, a user without a password
        'fields = ("password", "email")',
        'get_token("name")',
        "echo $PASSWORD",
        "login: admin / then press enter",
        "mongodb+srv://user:@cluster0/x",
        'print("password", "is", "required")',
    ],
)
def test_prose_placeholders_and_code_mask_nothing(text: str) -> None:
    assert values(text) == []


def test_key_names() -> None:
    secret = ["db_password", "PGPASSWORD", "apiKey", "X-Api-Key", "X-Auth-Token", "client_secret",
              "Authorization", "AWS_SECRET_ACCESS_KEY", "private_key", "accessKey", "credentials", "auth", "passwd",
              "MYSQL_PWD"]  # fmt: skip
    described = ["max_tokens", "token_count", "password_policy", "secret_name", "password_file", "author",
                 "authority", "tokenizer", "keyboard", "AWS_ACCESS_KEY_ID", "no_password", "secretary",
                 "key"]  # fmt: skip
    assert [k for k in secret if not is_secret_key(k)] == []
    assert [k for k in described if is_secret_key(k)] == []


def test_pattern_detector_masks_the_value_and_the_old_cut_at_ampersand_is_gone() -> None:
    text = '{"password": "Tr0ub4dor&3xK!"}'
    (span,) = PatternDetector(["SECRET"]).detect(text)
    assert span.text == "Tr0ub4dor&3xK!" and text[span.start - 1] == '"' and text[span.end] == '"'


CONFIG = """# app settings
[database]
host = "db.internal"
user = "app"
password = "Tr0ub4dor&3xK!"

[api]
api_key = 'sk-live-1234'
webhook = "https://hooks.example.com/x?token=wh_9f8e7d6c&ok=1"

[env]
DATABASE_URL=postgresql://app:pg%40ss!@db.internal:5432/app
export REDIS_PASSWORD="r3dis pass"
"""


def test_config_file_round_trip_is_exact_and_no_secret_leaves() -> None:
    p = Pseudonymizer()
    spans = PatternDetector().detect(CONFIG)
    masked = p.mask(CONFIG, spans)
    for secret in ("Tr0ub4dor&3xK!", "sk-live-1234", "wh_9f8e7d6c", "pg%40ss!", "r3dis pass"):
        assert secret not in masked
    assert 'password = "<SECRET_1>"' in masked and "host = " in masked and "user = " in masked
    assert p.restore(masked) == CONFIG
