"""Person names as the values of fields that hold one, in code, config and forms: `name="Anne Bryant"`,
`"nachname": "Müller"`, `contact:\\n  name: Glenda Escobar`, `emergency_contact = 'Nicole Edwards'`,
`Surname, first name: Simmons, Joshua`, in en/es/fr/de/it/nl/pt.

The key decides: its words (`customer_name` → customer, name; `firstName` → first, name) must be a name word
(name, surname, vorname, apellidos, cognome, achternaam, ...) alone or after a person qualifier (first, full,
customer, patient, emergency, ...), or a word that stands for a person (contact, holder, titular, patient,
recipient, ...). `product_name`, `host_name`, `file_name`, `username` do not qualify. The value must then be
a name: capitalised tokens (or a form's capitals) filling the quoted value or the rest of the line, at most
two comma-separated parts ("Simmons, Joshua"); a value with digits, lower-case words or code is not one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tandemlm.privacy.spans import Span, span_at


def wordset(words: str) -> frozenset[str]:
    """The whitespace-separated words of a string, as a set (long word lists read better as text)."""
    return frozenset(words.split())


NAME_WORDS = wordset(
    "name names fullname firstname lastname surname surnames forename forenames givenname familyname middlename"
    " maidenname vorname vornamen nachname familienname geburtsname nombre nombres apellido apellidos prenom"
    " prénom prenoms prénoms nom cognome nome nomi sobrenome apelido naam voornaam voornamen achternaam"
    " tussenvoegsel"
)
QUALIFIERS = wordset(
    "first last full given family middle maiden legal birth sur fore display real preferred customer client"
    " patient contact emergency person member employee student account card holder owner parent guardian"
    " spouse partner next kin doctor physician nurse teacher manager sender recipient author signer applicant"
    " beneficiary insured passenger guest traveller traveler driver tenant landlord buyer seller kunde kunden"
    " klant cliente paciente patienten mitarbeiter completo complet completa"
)
PERSON_KEYS = wordset(
    "contact emergencycontact holder accountholder cardholder titular intestatario tenutario patient paciente"
    " paziente patiënt patiente recipient destinatario destinataire empfänger ontvanger assignee signatory"
    " beneficiary beneficiario begünstigter contactpersoon ansprechpartner referente guardian titolare inhaber"
    " kontoinhaber houder rekeninghouder tutor tutore tuteur encarregado responsavel"
)
KEY = re.compile(
    r"(?P<q>[\"']?)(?P<key>[A-Za-zÀ-ÿ][\wÀ-ÿ.-]{0,40}?(?:,[ \t]*[A-Za-zÀ-ÿ][\wÀ-ÿ -]{0,20})?)(?P=q)"
    r"[ \t]*(?::|=>|=|:=)[ \t]*"
)
UP = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĮİŁŃŇŌŐŒŘŚŞŠŢŤŪŮŰŲŹŻŽ"
LOW = "a-zß-öø-ÿāăąćčďđēęěğįıłńňōőœřśşšţťūůűųźżž"
_TOKEN = rf"(?:(?:Mc|Mac|O['’]|D['’]|d['’])?[{UP}][{LOW}]+(?:['’][{LOW}]+)?(?:-[{UP}]?[{LOW}]+)*|[{UP}]{{2,}}|[{UP}]\.)"
_PARTICLE = r"(?:de la|de las|de los|van der|van den|van de|von der|de|del|van|von|zu|di|da|das|dos|do|du|des|le|la|y|e|ten|ter|bin|al|el)"  # noqa: E501
_NAME = rf"(?:{_PARTICLE}[ \t]+)*{_TOKEN}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_TOKEN}){{0,4}}"  # "van der Strigt, Amina"
NAME_VALUE = re.compile(rf"(?P<v>{_NAME}(?:,[ \t]*{_NAME})?)")
QUOTES = {'"': '"', "'": "'", "`": "`"}
HINTS = ("nam", "nom", "naam", "contact", "holder", "titular", "patient", "pacient", "pazient", "recipient",
         "destina", "empf", "ontvang", "assign", "signat", "benefic", "ansprech", "referente", "apellid", "cognom",
         "sobrenom", "vorname", "nachname", "guardian", "titolare", "inhaber", "houder", "tutor", "tuteur",
         "encarregado", "responsavel")  # fmt: skip


def _words(key: str) -> list[str]:
    return [w.lower() for w in re.findall(rf"[{UP}]?[{LOW}]+|[{UP}]+(?![{LOW}])", key)]


def is_name_key(key: str) -> bool:
    """Whether a field key names a person's name (see the module docstring)."""
    words = _words(key.replace(",", " "))
    if not words:
        return False
    joined = "".join(words)
    if joined in NAME_WORDS or joined in PERSON_KEYS or (len(words) <= 3 and words[-1] in PERSON_KEYS):
        return True
    if words[-1] in NAME_WORDS or (len(words) >= 2 and words[-1] == "completo"):
        return all(w in QUALIFIERS or w in NAME_WORDS for w in words[:-1])
    return False


def find_field_names(text: str) -> Iterator[Span]:
    """PERSON spans over the values of name fields."""
    low = text.lower()
    if not any(h in low for h in HINTS):
        return
    for m in KEY.finditer(text):
        if not is_name_key(m["key"]):
            continue
        at = m.end()
        close = QUOTES.get(text[at : at + 1])
        if close:
            at += 1
        value = NAME_VALUE.match(text, at)
        if value is None:
            continue
        end = value.end()
        after = text[end : end + 1]
        if close:
            if after != close:
                continue  # the quoted value holds more than a name
        elif after and not re.match(r"[ \t]*(?:$|[\n,;|}\])]|[ \t]{2,})", text[end:], re.MULTILINE):
            continue  # prose goes on after the capitalised words: "Name: Smith is on leave"
        name = value["v"]
        if name.isupper() and len(name) <= 3:
            continue
        if " " not in name and _words(m["key"]) in (["name"], ["nom"], ["nombre"], ["nome"], ["naam"]):
            continue  # a bare `name="Orders"` names things as often as people: a full name, or a qualified key
        yield span_at(text, at, end, "PERSON", score=0.85)
