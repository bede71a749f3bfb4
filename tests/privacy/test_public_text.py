"""Names in task texts (privacy/public_text.py): the people an exam question, a word problem or a code example
is about are not masked when nothing else personal is there; a personal cue or other PII keeps them."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector, UnionDetector
from tandemlm.privacy.public_text import drop_public_names, public_task
from tandemlm.privacy.spans import Span, span_at

DETECT = UnionDetector([PatternDetector()])  # names.py cues and the patterns, no spaCy needed


def person(text: str, value: str, source: str = "presidio") -> Span:
    start = text.index(value)
    return span_at(text, start, start + len(value), "PERSON", source, 0.85)


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Robles buys 315 bananas for his 3 monkeys. How many bananas does each monkey eat?",  # GSM8K
        "Miss Maria has 6 decks with 25 cards each. How many cards does Miss Maria have?",
        # HumanEval: a docstring example
        'def f(s):\n    """\n    f("Hi, my name is John") == ["Hi", "my", "name", "is", "John"]\n    """\n',
    ],
)
def test_names_in_task_texts_are_not_masked(text: str) -> None:
    assert DETECT.detect(text) == []


def test_an_exam_question_about_a_historical_figure() -> None:
    text = ("Cosimo and Lorenzo de Medici were both addicted to Plato.\nBertrand Russell, 1946\n"
            "The passage suggests that\nA. one\nB. two\nC. three\nD. four")  # fmt: skip
    spans = [person(text, "Lorenzo de Medici"), person(text, "Bertrand Russell")]
    assert public_task(text) and drop_public_names(spans, text) == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # a personal cue before the name: a possessive, a self-introduction, a greeting
        ("My colleague Maria Lopez has 5 apples. How many apples do 3 such colleagues have?", "Maria Lopez"),
        ("Hi, my name is Ann Lee. If I buy 3 pens at 2 dollars, how much do I pay?", "Ann Lee"),
        ("Dear Tom, you owe 20 dollars for 4 tickets. How much is one ticket?", "Tom"),
    ],
)
def test_a_personal_cue_keeps_the_name(text: str, kept: str) -> None:
    assert [s.text for s in drop_public_names([person(text, kept)], text)] == [kept]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # the writer's own life, told with a question and a number: not an exercise
        ("Tom borrowed 200 euros from me last week. How do I ask him to pay it back?", "Tom"),
        ("Dr. Whitfield prescribed 20 mg of citalopram to my mother. Is that a normal dose?", "Whitfield"),
        ("Mi vecino Pedro me debe 50 euros. ¿Cómo se lo pido?", "Pedro"),
        ("Ich habe Anna 30 Euro geliehen. Wann zahlt sie zurück?", "Anna"),
        # a full name in a third-person question may be a real person's: it stays masked
        ("Sarah Johnson has not paid 3 invoices. Can you write a polite reminder?", "Sarah Johnson"),
        ("Alan Whitfield was prescribed 20 mg of citalopram. Is that a normal dose?", "Alan Whitfield"),
    ],
)
def test_first_person_texts_and_full_names_keep_the_name(text: str, kept: str) -> None:
    assert [s.text for s in drop_public_names([person(text, kept)], text)] == [kept]


def test_other_personal_data_keeps_every_name() -> None:
    text = "Mr. Robles (phone +44 20 7946 0018) buys 315 bananas. How many bananas per day?"
    spans = DETECT.detect(text)
    assert [s.entity for s in spans] == ["PERSON", "PHONE"]


@pytest.mark.parametrize(
    "text",
    ["Please forward this to Ann Lee in accounting.",  # not a task: no question, no options
     "Can you write a birthday note for Maria?",  # a question without numbers is a request
     "Write a unit test: send_sms(to=user, body='Hi Maria')"],  # code, but no example or test line
)  # fmt: skip
def test_requests_are_not_task_texts(text: str) -> None:
    spans = [person(text, "Ann Lee" if "Ann" in text else "Maria")]
    assert drop_public_names(spans, text) == spans
