"""Full names by the record around them, for the names neither NER nor a greeting or label finds: a person's
role before the name, "in the name of", a name next to its ID number, and signature blocks; in
en/es/fr/de/it/nl/pt.

- Role: "the customer Ann Lee", "El socio Ester Velasco", "el titular es Ana Gil", "unser Mitglied Theodor
  Paffrath", "Kontoinhaber Matthias Hornich", "Next of kin: Pranav Hari", "l'adhérent Théodore Leduc".
- Name of: "in the name of Ann Lee", "au nom de", "a nombre de", "em nome de", "op naam van", "a nome di",
  "auf den Namen", and the record of someone: "the file of", "la ficha de", "la fiche de", "la scheda di".
- Next to an ID: "Amber Peck (id=537934691", "EMP-15355 (Jeremy Reed)", "NIF 228604133 já registado (Rui
  Tavares)", "already used for Marcel Delaunay" after an ID on the same line.
- Signature: a line holding only a name, after a blank line or a line ending in a comma, that ends the text
  or comes before a contact line (Tel., Phone, E-mail, ...).

Precision: these cues are weaker than "my name is", so the name must have two to five capitalised tokens
(names.py's `_name_at`: particles allowed, `NOT_NAMES` stop it), except on a signature line after a closing
comma; the ID next to it must have four or more digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from tandemlm.privacy.identifiers import fold
from tandemlm.privacy.name_fields import wordset
from tandemlm.privacy.spans import Span, span_at
from tandemlm.privacy.tables import header_words, table_cells

ROLES = (
    "member|customer|client|patient|employee|student|tenant|guest|passenger|traveller|traveler|holder"
    "|cardholder|beneficiary|applicant|colleague|coworker|landlord|subscriber|user"
    "|socio|socia|cliente|paciente|empleado|empleada|alumno|alumna|inquilino|inquilina|huésped|pasajero|pasajera"
    "|titular|beneficiario|beneficiaria|compañero|compañera|colega|afiliado|afiliada"
    "|adhérent|adhérente|patiente|salarié|salariée|employé|employée|étudiant|étudiante|locataire|passager"
    "|passagère|titulaire|bénéficiaire|collègue|abonné|abonnée|membre"
    "|mitglied|kunde|kundin|patientin|mitarbeiter|mitarbeiterin|studentin|mieter|mieterin|gast|passagier"
    "|kontoinhaber|kontoinhaberin|inhaber|inhaberin|kollege|kollegin|versicherte|versicherter|antragsteller"
    "|dipendente|studente|studentessa|ospite|passeggero|passeggera|intestatario|intestataria|collega|iscritto"
    "|iscritta|assistito|assistita|paziente|lid|klant|patiënt|medewerker|medewerkster|werknemer|huurder"
    "|rekeninghouder|deelnemer|aanvrager|sócio|sócia|utente|funcionário|funcionária|aluno|aluna|hóspede"
    "|passageiro|passageira|beneficiário|beneficiária|colaborador|colaboradora|segurado|segurada"
)
ROLE_WORDS = frozenset(ROLES.split("|"))
# a word, maybe a colon, then a capitalised word: the word is looked up in ROLE_WORDS
ROLE = re.compile(r"(?<![\w-])([^\W\d_]+)[ \t]*(?::|[ \t](?:is|es|est|ist|è|é|era|was|war))?[ \t]+(?=[A-ZÀ-Þ])")
NAME_OF = re.compile(
    r"(?<![\w-])(?i:in the name of|under the name(?: of)?|on behalf of|au nom de|en nom de|a nombre de"
    r"|en nombre de|em nome de|no nome de|im namen von|auf den namen(?: von)?|a nome di|op naam van|namens"
    r"|the (?:file|record|details|chart) (?:of|for)|la ficha de|el expediente de|la fiche de|le dossier de"
    r"|la scheda di|la pratica di|die akte von|het dossier van|a ficha de|o processo de|a nota de alta de"
    r"|la nota de alta de|de ficha van|intestat[oa] a|a favor de|à l'ordre de|zugunsten von|ten gunste van)"
    r"[ \t]+(?=[A-ZÀ-Þ])"
)
# "Name on the account: Ann Lee", "Nombre del titular: ...", "Nom du titulaire : ..."
NAME_LABEL = re.compile(r"(?<![\w-])(?i:name|nombre|nom|nome|naam)(?:[ \t]+[a-zà-ÿ']+){1,4}[ \t]*:[ \t]*(?=[A-ZÀ-Þ])")
# "'Ann Lee, your membership ...": a full name addressed at the start of a sentence or quote
VOCATIVE = re.compile(r"(?:^|(?<=[\n'\"“‘:]))[ \t]*(?=[A-ZÀ-Þ])")
YOU = re.compile(
    r",[ \t]+(?i:your|you|thank you|thanks|please|tu|tú|su|usted|vous|votre|ton|ta|du|dein|deine|ihr|ihre|sie"
    r"|il tuo|la tua|je|jouw|uw|u|o seu|a sua|você|teu|tua)(?![\w])"
)
# a preposition before a name that an ID on the same line vouches for
PREPOSITION = re.compile(r"(?<![\w-])(?:for|of|per|pour|para|für|voor|de|di|da|van|von|do|du)[ \t]+(?=[A-ZÀ-Þ])")
ID_NEAR = re.compile(r"[A-Za-z]*\d[\dA-Za-z\-./ ]{2,}\d")
CONTACT_LINE = re.compile(
    r"[ \t]*(?:tel|tél|telf|tlf|phone|mobile|mob|cell|móvel|movil|móvil|telefon|telefone|telefono|telefoon|handy"
    r"|e-?mail|mail|fax|m|t|p)\b\.?[ \t]*:?", re.IGNORECASE
)  # fmt: skip


NameAt = Callable[[str, int], "tuple[int, int] | None"]


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def find_context_names(text: str, name_at: NameAt) -> Iterator[Span]:
    """PERSON spans by role, "in the name of", an adjacent ID, or a signature line (see the module docstring).
    `name_at(text, pos)` is names.py's extent finder: (start, end) of the name starting at pos, or None."""
    extent = name_at
    for m in VOCATIVE.finditer(text):
        name = extent(text, m.end())
        if name and _tokens(text, name) >= 2 and YOU.match(text, name[1]):
            yield span_at(text, name[0], name[1], "PERSON", score=0.75)
    yield from _table_names(text, extent)
    for regex in (ROLE, NAME_OF, NAME_LABEL):
        for m in regex.finditer(text):
            if regex is ROLE and not _role(text, m):
                continue
            name = extent(text, m.end())
            if name and _tokens(text, name) >= 2:
                yield span_at(text, name[0], name[1], "PERSON", score=0.8)
    if re.search(r"\d{4}", text):
        for m in PREPOSITION.finditer(text):
            name = extent(text, m.end())
            if name and _tokens(text, name) >= 2 and _id_beside(text, name):
                yield span_at(text, name[0], name[1], "PERSON", score=0.75)
        for m in re.finditer(r"\([ \t]*(?=[A-ZÀ-Þ])", text):
            name = extent(text, m.end())
            if name and _tokens(text, name) >= 2 and re.match(r"[ \t]*\)", text[name[1] :]) and _id_beside(text, name):
                yield span_at(text, name[0], name[1], "PERSON", score=0.75)
    yield from _signatures(text, extent)


ORG_WORDS = wordset(
    "Corp Corporation Inc Ltd Limited LLC LLP Plc PLC GmbH AG KG SA SAS SARL SL SLU BV NV SpA Srl SRL Lda Ltda Co"
    " Company Group Bank Hotel Hospital Clinic University School Services Solutions Systems"
)


def _role(text: str, m: re.Match[str]) -> bool:
    """Whether the word before a name is a role ("customer", "Mitglied"; "kin" only in "next of kin")."""
    word = m.group(1).lower()
    if word == "kin":
        return text[max(0, m.start() - 8) : m.start()].lower().endswith("next of ")
    return word in ROLE_WORDS


def _tokens(text: str, name: tuple[int, int]) -> int:
    """How many capitalised tokens the name has; 0 when it reads as an organisation ("Acme Corp")."""
    words = [w.strip(".,") for w in text[name[0] : name[1]].split()]
    if any(w in ORG_WORDS for w in words):
        return 0
    return len([w for w in words if w[:1].isupper()])


def _id_beside(text: str, name: tuple[int, int]) -> bool:
    """An ID (four or more digits) right after the name, "(id=…", ", passport …", or before it on its line."""
    line_start = text.rfind("\n", 0, name[0]) + 1
    line_end = text.find("\n", name[1])
    after = text[name[1] : (len(text) if line_end < 0 else line_end)][:48]
    before = text[line_start : name[0]][-48:]
    if not re.match(r"[ \t]*[(),;:\-–—|]", after) and not re.match(r"[ \t]*\)?[ \t]*$", after):
        return False  # the sentence goes on: "for New Year 2024"
    return any(_digits(m.group()) >= 4 for m in ID_NEAR.finditer(after + " " + before))


NAME_HEADER = re.compile(r"(?i:(?:full |first |last |given |family )?name|nombre|nom|prenom|nome|naam|vorname|nachname"
                         r"|apellidos?|cognome|achternaam|voornaam|sobrenome)")  # fmt: skip


def _table_names(text: str, extent: NameAt) -> Iterator[Span]:
    """Cells under a table header cell that names a person's name ("Name", "Nombre", `first_name`)."""
    for cell in table_cells(text):
        if NAME_HEADER.fullmatch(fold(header_words(cell.header))):
            end = cell.start + len(cell.value)
            name = extent(text[:end], cell.start)  # the name ends with its cell (a tab is a space to `extent`)
            if name and name[1] == end:
                yield span_at(text, name[0], name[1], "PERSON", score=0.8)


def _signatures(text: str, extent: NameAt) -> Iterator[Span]:
    lines = text.split("\n")
    if len(lines) < 3:
        return
    pos = 0
    starts = []
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i < 2 or not stripped or not stripped[0].isupper():
            continue
        prev = lines[i - 1].strip()
        closing = prev.endswith(",") and len(prev) <= 48
        if prev and not closing:
            continue
        following = next((x for x in lines[i + 1 : i + 4] if x.strip()), None)
        if following is not None and not CONTACT_LINE.match(following.strip()):
            continue
        if following is None and any(x.strip() for x in lines[i + 4 : i + 5]):
            continue
        at = starts[i] + len(line) - len(line.lstrip())
        name = extent(text, at)
        if name is None or text[name[1] : starts[i] + len(line)].strip():
            continue  # the line holds more than a name
        if _tokens(text, name) >= 2 or (closing and _tokens(text, name) >= 1):
            yield span_at(text, name[0], name[1], "PERSON", score=0.75)
