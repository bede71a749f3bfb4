"""Benchmark-shaped prompts without private data (GSM8K-, MMLU- and HumanEval-like, written here): the secret,
address and name finders report nothing on them, though they hold numbers, street words, "password", "token",
"secret", "key", "auth", greetings and capitalised words."""

from __future__ import annotations

import pytest

from tandemlm.privacy.addresses import find_addresses
from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.names import find_names
from tandemlm.privacy.secrets import find_assigned_secrets

GSM8K = (
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How "
        "many clips did Natalia sell altogether in April and May?"
    ),
    (
        "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much "
        "did she earn?"
    ),
    (
        "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
        "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her "
        "parents. How much more money does Betty need to buy the wallet?"
    ),
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
    (
        "I walked 5 streets north and then 3 main roads east. If each street is 120 meters long and each road "
        "is 300 meters, how far did I walk?"
    ),
    (
        "Chapter 12 Street Fighter tournament has 64 players. After each round half are eliminated. How many "
        "rounds until a winner?"
    ),
    (
        "A token costs $2 at the arcade and each game needs 3 tokens. The secret to winning is patience. If "
        "Tom has $30, how many games can he play?"
    ),
    (
        "Mark's password is 8 characters long and each character can be one of 26 letters. How many passwords "
        "are possible? Write the answer as a power."
    ),
    (
        "A bakery on Route 66 sells 120 loaves on Monday and 15 more each day after. How many loaves does it "
        "sell by Friday?"
    ),
    (
        "The 3 main roads into town each carry 450 cars per hour. On Highway 7, traffic is 20% higher. How "
        "many cars per hour use Highway 7?"
    ),
    "I am 12 years old and my sister is twice my age minus 4. How old is my sister?",
)
MMLU = (
    (
        "Which of the following best describes the token bucket algorithm used in network traffic shaping?\nA. "
        "It drops all packets\nB. It allows bursts up to the bucket size\nC. It encrypts packets\nD. It routes "
        "packets"
    ),
    (
        "In cryptography, why is the password stored hashed rather than in plain text?\nA. To save space\nB. "
        "So that a database leak does not reveal it\nC. To speed up login\nD. None of the above"
    ),
    (
        "A company wants users to reset your password every 90 days. Which security principle does this "
        "reflect?\nA. Least privilege\nB. Credential rotation\nC. Defense in depth\nD. Non-repudiation"
    ),
    (
        "Question: In the game secret santa, each of 8 people is assigned one other person. What is this an "
        "example of?\nA. A derangement\nB. A combination\nC. A partition\nD. A bijection"
    ),
    (
        "Which amendment to the US Constitution abolished slavery?\nA. First\nB. Thirteenth\nC. Fifteenth\nD. "
        "Nineteenth\nAnswer:"
    ),
    ("The author of 'Pride and Prejudice' is:\nA. Charlotte Brontë\nB. Jane Austen\nC. Mary Shelley\nD. George Eliot"),
    (
        "Which of the following is an example of two-factor authentication?\nA. A password and a PIN\nB. A "
        "password and a one-time token sent to your phone\nC. Two passwords\nD. A username and a password"
    ),
    (
        "Dear Sir or Madam is an appropriate salutation when:\nA. the recipient's name is unknown\nB. writing "
        "to a friend\nC. texting\nD. never"
    ),
    (
        "What does the abbreviation API key refer to in software engineering?\nA. A keyboard\nB. A credential "
        "that identifies a calling program\nC. A database index\nD. A cipher"
    ),
    (
        "According to Keynesian economics, an increase in government spending of $100 billion with a "
        "multiplier of 2.5 raises GDP by:\nA. $40 billion\nB. $100 billion\nC. $250 billion\nD. $2.5 billion"
    ),
    (
        "I'm Happy to help with this question: which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. "
        "Jupiter\nD. Saturn"
    ),
)
HUMANEVAL = (
    (
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> "
        'bool:\n    """ Check if in given list of numbers, are any two numbers closer to each other than\n    '
        'given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    """\n'
    ),
    (
        'def tokenize(text: str) -> list[str]:\n    """Split text into tokens on whitespace.\n    >>> '
        'tokenize("a b")\n    [\'a\', \'b\']\n    """\n    tokens = []\n    for token in '
        "text.split():\n        tokens.append(token)\n    return tokens\n"
    ),
    (
        'def check_password(password: str) -> bool:\n    """Return True if the password has at least 8 '
        'characters and a digit."""\n    if len(password) < 8:\n        return False\n    return '
        "any(c.isdigit() for c in password)\n"
    ),
    (
        'def sort_by_key(items, key=None):\n    """Sort items by key.\n    >>> sort_by_key([3, 1, 2])\n    [1, '
        '2, 3]\n    """\n    return sorted(items, key=key)\n'
    ),
    (
        'def login(username, password=None, token=None):\n    """Authenticate with a password or a '
        'token."""\n    if token is None:\n        token = get_token(username, password)\n    auth = {"user": '
        'username, "token": token}\n    return auth\n'
    ),
    (
        "class Config:\n    api_key: str\n    secret: str | None = None\n    max_tokens: int = 256\n\n    def "
        "__init__(self, api_key: str, secret: str | None = None):\n        self.api_key = api_key\n        "
        "self.secret = secret\n"
    ),
    (
        'import os\n\nAPI_KEY = os.environ["OPENAI_API_KEY"]\nDB_PASSWORD = os.getenv("DB_PASSWORD", "")\n'
        "token_count = len(prompt.split())\npassword_min_length = 12\n"
    ),
    (
        'def count_tokens(prompt: str, max_tokens: int = 100) -> int:\n    """Count tokens; the secret is that '
        'a token is roughly 4 characters."""\n    n_tokens = len(prompt) // 4\n    return min(n_tokens, '
        "max_tokens)\n"
    ),
    (
        "function authenticate(req, res) {\n  const token = req.headers.authorization;\n  const password = "
        "req.body.password;\n  if (!token && !password) return res.status(401).end();\n  return verify(token, "
        "process.env.JWT_SECRET);\n}\n"
    ),
    (
        'def street_numbers(n: int) -> list[int]:\n    """Return the numbers of n houses on one street: 1, 3, '
        '5, ...\n    >>> street_numbers(3)\n    [1, 3, 5]\n    """\n    return [2 * i + 1 for i in range(n)]\n'
    ),
    (
        'def greet(name: str) -> str:\n    """Return a greeting.\n    >>> greet("World")\n    \'Hello '
        'World!\'\n    """\n    return f"Hello {name}!"\n'
    ),
)


@pytest.mark.parametrize("prompt", [*GSM8K, *MMLU, *HUMANEVAL])
def test_no_secret_address_or_name_in_benign_prompts(prompt: str) -> None:
    found = [
        (s.entity, s.text) for finder in (find_assigned_secrets, find_addresses, find_names) for s in finder(prompt)
    ]
    assert found == []
    assert PatternDetector(["SECRET", "ADDRESS", "PERSON"]).detect(prompt) == []


def test_the_corpus_is_the_size_the_issue_asks_for() -> None:
    assert len(GSM8K) + len(MMLU) + len(HUMANEVAL) >= 30
