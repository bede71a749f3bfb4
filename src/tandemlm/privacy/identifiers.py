"""Identifiers: national identity and tax numbers by their checksums, other ID-like values by the words before them.

Two entity types, each a finder registered in `patterns.FINDERS`:

- `NATIONAL_ID` (`find_national_ids`): a national identity, tax or social-security number of a known format,
  found anywhere because its checksum or strict shape says what it is: Spanish DNI and NIE, French
  INSEE/NIR, Italian codice fiscale, Dutch BSN, UK National Insurance number, German Steuer-ID, Indian
  Aadhaar, Portuguese NIF, Belgian national number, Brazilian CPF. Formats whose check is weak (one value
  in ten or eleven passes: BSN, NIF, Steuer-ID, Aadhaar, CPF) count in bare digits only outside a
  quantity (no currency sign, unit word, percent or arithmetic next to it); a US SSN stays `US_SSN`.
- `ID_NUMBER` (`find_cued_ids`): an ID-like value (five or more letters and digits, at least one digit,
  optionally grouped by `-`, `.`, `/` or spaces) right after a cue: record, patient, passport, ID card,
  account, IBAN, member, customer, employee, student, tax, social security, licence, plate, policy, case
  and claim words in English, Spanish, French, German, Italian, Dutch and Portuguese, then up to three
  connecting words ("number", "no.", "nº", "#", ":", "is", "de", ...). A cued value that passes one of
  the validators above is a `NATIONAL_ID` instead. Order, invoice and tracking numbers are not cues: they
  identify a purchase, not a person (case and claim numbers do identify one).

A generic cue word (record, account, case, policy, member, ...) needs a connector ("number", "no.", ":")
or an ID-shaped value (letters with digits, separators, a leading zero): "a record 15000 visitors" is a
quantity, "record no. 15000" an identifier. Words that name the identifier itself (passport, IBAN, MRN,
Kundennummer, codice fiscale, ...) need neither.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator

from tandemlm.privacy.spans import Span, span_at
from tandemlm.privacy.tables import header_words, table_cells

# ---- validators: each takes the value with separators removed, in upper case ---------------------------

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                   12, 14, 16, 10, 22, 25, 24, 23], strict=True))  # fmt: skip
CF_OMOCODIA = "LMNPQRSTUV"  # letters that stand for the digits 0-9 when two people would share a code
NINO_EXCLUDED = frozenset(["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"])
VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]  # fmt: skip
VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]  # fmt: skip


def dni_valid(value: str) -> bool:
    """Spanish DNI: eight digits and the letter of their remainder mod 23."""
    return bool(re.fullmatch(r"\d{8}[A-Z]", value)) and DNI_LETTERS[int(value[:8]) % 23] == value[8]


def nie_valid(value: str) -> bool:
    """Spanish NIE: X, Y or Z (read as 0, 1, 2), seven digits, and the DNI control letter."""
    return bool(re.fullmatch(r"[XYZ]\d{7}[A-Z]", value)) and dni_valid(str("XYZ".index(value[0])) + value[1:])


def nir_valid(value: str) -> bool:
    """French INSEE/NIR: sex, year, month, department (2A/2B for Corsica), commune, order, and the key
    97 − (the first 13 digits mod 97)."""
    m = re.fullmatch(r"([1-478])(\d\d)(\d\d)(\d\d|2[AB])(\d{6})(\d\d)", value)
    if m is None:
        return False
    month = int(m.group(3))  # 20, 30-42 and 50+ stand for an unknown month
    if not (1 <= month <= 12 or month == 20 or 30 <= month <= 42 or month >= 50):
        return False
    body = value[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(m.group(6))


def codice_fiscale_valid(value: str) -> bool:
    """Italian codice fiscale: six letters of name, year, month letter, day (+40 for women), town code and
    a check letter from the odd/even tables; digits may be replaced by letters (omocodia)."""
    digit = f"[0-9{CF_OMOCODIA}]"
    if not re.fullmatch(rf"[A-Z]{{6}}{digit}{{2}}[ABCDEHLMPRST]{digit}{{2}}[A-Z]{digit}{{3}}[A-Z]", value):
        return False
    day = "".join(str(CF_OMOCODIA.index(ch)) if ch.isalpha() else ch for ch in value[9:11])
    if not (1 <= int(day) <= 31 or 41 <= int(day) <= 71):
        return False
    total = sum(CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65)
                for i, ch in enumerate(value[:15]))  # fmt: skip
    return chr(65 + total % 26) == value[15]


def bsn_valid(value: str) -> bool:
    """Dutch BSN: nine digits passing the 11-test (9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 mod 11)."""
    if not re.fullmatch(r"\d{9}", value) or value == "000000000":
        return False
    return (sum(int(d) * (9 - i) for i, d in enumerate(value[:8])) - int(value[8])) % 11 == 0


def nino_valid(value: str) -> bool:
    """UK National Insurance number: two letters (no D, F, I, Q, U, V; no O second; not BG, GB, KN, NK, NT,
    TN, ZZ), six digits, and A, B, C or D."""
    m = re.fullmatch(r"([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z])\d{6}[A-D]", value)
    return m is not None and m.group(1) not in NINO_EXCLUDED


def steuer_id_valid(value: str) -> bool:
    """German Steuer-ID: 11 digits, no leading 0, in the first ten exactly one digit twice or three times
    (never three in a row) and the rest at most once, then the ISO 7064 MOD 11,10 check digit."""
    if not re.fullmatch(r"[1-9]\d{10}", value):
        return False
    counts = [value[:10].count(d) for d in set(value[:10])]
    if sorted(c for c in counts if c > 1) not in ([2], [3]) or re.search(r"(\d)\1\1", value[:10]):
        return False
    product = 10
    for d in value[:10]:
        total = (int(d) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(value[10])


def verhoeff_valid(digits: str) -> bool:
    """The Verhoeff dihedral-group checksum (Aadhaar's check digit)."""
    c = 0
    for i, d in enumerate(reversed(digits)):
        c = VERHOEFF_D[c][VERHOEFF_P[i % 8][int(d)]]
    return c == 0


def aadhaar_valid(value: str) -> bool:
    """Indian Aadhaar: 12 digits, not starting with 0 or 1, with a Verhoeff check digit."""
    return bool(re.fullmatch(r"[2-9]\d{11}", value)) and verhoeff_valid(value)


def tfn_valid(value: str) -> bool:
    """Australian tax file number: nine digits whose weighted sum (1, 4, 3, 7, 5, 8, 6, 9, 10) is 0 mod 11."""
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    if not re.fullmatch(r"\d{9}", value):
        return False
    return sum(int(d) * w for d, w in zip(value, weights, strict=True)) % 11 == 0


def pan_valid(value: str) -> bool:
    """Indian PAN: five letters (the fourth says whose: P a person, C a company, ...), four digits, a letter."""
    return bool(re.fullmatch(r"[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z]", value))


def nif_pt_valid(value: str) -> bool:
    """Portuguese NIF of a person (first digit 1, 2 or 3, or 45 for non-residents): nine digits, mod 11."""
    if not re.fullmatch(r"(?:[123]\d|45)\d{7}", value):
        return False
    r = sum(int(d) * (9 - i) for i, d in enumerate(value[:8])) % 11
    return (0 if r < 2 else 11 - r) == int(value[8])


def be_national_valid(value: str) -> bool:
    """Belgian national number: birth date YYMMDD (month +20/+40 for bis numbers), serial, and
    97 − (the first nine digits mod 97), with a leading 2 for those born from 2000."""
    if not re.fullmatch(r"\d{11}", value):
        return False
    month, day = int(value[2:4]) % 20, int(value[4:6])
    if not (month <= 12 and day <= 31 and int(value[2:4]) < 60):
        return False
    check = int(value[9:])
    return 97 - int(value[:9]) % 97 == check or 97 - int("2" + value[:9]) % 97 == check


def cpf_valid(value: str) -> bool:
    """Brazilian CPF: 11 digits, not all the same, with two mod-11 check digits."""
    if not re.fullmatch(r"\d{11}", value) or len(set(value)) == 1:
        return False
    digits = [int(d) for d in value]
    return all(sum(d * (n + 1 - i) for i, d in enumerate(digits[:n])) * 10 % 11 % 10 == digits[n] for n in (9, 10))


#: Known formats: name → validator (of the compact, upper-case value).
VALIDATORS: dict[str, Callable[[str], bool]] = {
    "ES_DNI": dni_valid, "ES_NIE": nie_valid, "FR_NIR": nir_valid, "IT_CODICE_FISCALE": codice_fiscale_valid,
    "NL_BSN": bsn_valid, "UK_NINO": nino_valid, "DE_STEUER_ID": steuer_id_valid, "IN_AADHAAR": aadhaar_valid,
    "PT_NIF": nif_pt_valid, "BE_NATIONAL_NUMBER": be_national_valid, "BR_CPF": cpf_valid, "AU_TFN": tfn_valid,
    "IN_PAN": pan_valid,
}  # fmt: skip
# about 1 random value in 10 or 11 passes
WEAK = frozenset(["NL_BSN", "PT_NIF", "DE_STEUER_ID", "IN_AADHAAR", "BR_CPF", "AU_TFN"])

_B0, _B1 = r"(?<![\w.,/+\-])", r"(?![\w/\-]|[.,]\d)"
_CF_DIGIT = f"[0-9{CF_OMOCODIA}]"
_CF = rf"[A-Za-z]{{6}}{_CF_DIGIT}{{2}}[A-Za-z]{_CF_DIGIT}{{2}}[A-Za-z]{_CF_DIGIT}{{3}}[A-Za-z]"
_NINE = r"\d{9}|\d{4}\.\d{2}\.\d{3}|\d{3}([ .])\d{3}\1\d{3}"
#: Where each format is looked for without a cue: (regex, the formats to try on its compact value).
SHAPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(rf"{_B0}\d{{2}}(\.?)\d{{3}}\1\d{{3}}(?:[ \-]?[A-Z]|-?[a-z]){_B1}"), ("ES_DNI",)),
    (re.compile(rf"{_B0}[XYZxyz][ \-]?\d{{7}}(?:[ \-]?[A-Z]|-?[a-z]){_B1}"), ("ES_NIE",)),
    (re.compile(rf"{_B0}[1-478](?:[ .]?\d){{4}}[ .]?(?:\d[ .]?\d|2[ .]?[ABab])(?:[ .]?\d){{8}}{_B1}"), ("FR_NIR",)),
    (re.compile(rf"(?<!\w){_CF}(?!\w)"), ("IT_CODICE_FISCALE",)),
    (re.compile(r"(?<!\w)[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"), ("UK_NINO",)),
    (re.compile(rf"{_B0}(?:{_NINE}){_B1}"), ("NL_BSN", "PT_NIF", "AU_TFN")),
    (re.compile(r"(?<![\w])[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z](?![\w])"), ("IN_PAN",)),
    (re.compile(rf"{_B0}\d{{2}}(\.?)\d{{2}}\1\d{{2}}[\-. ]?\d{{3}}\.?\d{{2}}{_B1}"), ("BE_NATIONAL_NUMBER",)),
    (re.compile(rf"{_B0}\d\d(?: ?\d{{3}}){{3}}{_B1}"), ("DE_STEUER_ID", "BE_NATIONAL_NUMBER", "BR_CPF")),
    (re.compile(rf"{_B0}\d\d/\d{{3}}/\d{{3}}/\d{{3}}{_B1}"), ("DE_STEUER_ID",)),
    (re.compile(rf"{_B0}\d{{3}}\.\d{{3}}\.\d{{3}}-\d{{2}}{_B1}"), ("BR_CPF",)),
    (re.compile(rf"{_B0}[2-9]\d{{3}}([ \-]?)\d{{4}}\1\d{{4}}{_B1}"), ("IN_AADHAAR",)),
)
SEPARATORS = re.compile(r"[\s.\-/]")
QUANTITY_BEFORE = re.compile(r"(?:[$€£¥₹]|[=+*/×÷^<>]|\b(?:us|rs|inr|eur|usd|gbp))\s?$", re.IGNORECASE)
QUANTITY_AFTER = re.compile(
    r"\s?(?:[%=+*/×÷^<>]|(?:percent|dollars?|euros?|pounds?|yen|rupees?|reais|units?|items?|people|persons|"
    r"times|km|kilomet(?:er|re)s?|miles?|met(?:er|re)s?|kg|grams?|tons?|tonnes?|lit(?:er|re)s?|years?|days?|"
    r"hours?|minutes?|seconds?|votes|copies|visitors|users|bytes|cells|dots|points|steps|words|"
    r"m|s|g|l|cm|mm|ml|mg|hz|kb|mb|gb|tb)\b)",
    re.IGNORECASE,
)


def national_id_kind(value: str) -> str | None:
    """The known format a value (separators allowed) belongs to, e.g. `ES_DNI`, or None."""
    compact = SEPARATORS.sub("", value).upper()
    return next((name for name, valid in VALIDATORS.items() if valid(compact)), None)


def in_quantity(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] reads as an amount: a currency or operator before it, a unit after it."""
    return bool(QUANTITY_BEFORE.search(text[max(0, start - 4) : start]) or QUANTITY_AFTER.match(text, end))


def find_national_ids(text: str) -> Iterator[Span]:
    """National identity and tax numbers of the known formats, found by their checksums (no cue needed)."""
    seen: set[tuple[int, int]] = set()
    for regex, formats in SHAPES:
        for m in regex.finditer(text):
            if m.span() in seen:
                continue
            value = m.group()
            compact = SEPARATORS.sub("", value).upper()
            for name in formats:
                if not VALIDATORS[name](compact):
                    continue
                if name in WEAK and value.isdigit() and in_quantity(text, m.start(), m.end()):
                    continue
                seen.add(m.span())
                yield span_at(text, m.start(), m.end(), "NATIONAL_ID")
                break


# ---- identifiers by cue -------------------------------------------------------------------------------

# Cue words, folded (lower case, no accents), as regex fragments; a space matches spaces or a hyphen.
#: Words that name an identifier: the value after them is one, whatever its shape.
STRONG_CUES: dict[str, tuple[str, ...]] = {
    "record": ("mrn", "nhs", "medical record", "historia clinica", "dossier medical", "cartella clinica",
               "prontuario", "processo clinico", "numero de utente", "patient id", "patienten ?(?:nummer|nr|id)",
               "patientnummer", "versichertennummer", "krankenversichertennummer", "mr#", "medicare", "ur number",
               "urn", "uhid", "abha", "health id", "health number", "health card", "nhi", "hcn", "ipp", "nhc",
               "carte vitale", "tarjeta sanitaria", "tessera sanitaria", "cartao de saude", "ziekenfonds"),
    "identity": ("passport", "pasaporte", "passeport", "reisepass", "pass ?(?:nummer|nr)", "passaporto",
                 "paspoort(?:nummer)?", "passaporte", "dni", "documento de identidad", "cedula", "carte d'identite",
                 "cni", "personalausweis(?:nummer)?", "ausweis ?(?:nummer|nr)", "carta d'identita",
                 "carta di identita", "identiteitskaart", "cartao de cidadao", "bilhete de identidade",
                 "identity card", "id card", "national id", "id", "rg", "cpf", "curp", "aadhaa?r",
                 "pan (?:card|number|no)"),
    "account": ("iban", "sort code", "routing number", "bic", "swift", "kontonummer", "konto ?nr", "bankverbindung",
                "rekeningnummer", "rib", "nib", "conto corrente", "conta corrente", "numero di conto", "acct", "acc no",
                "a/c", "bsb", "ifsc", "aba", "blz", "bankleitzahl", "bank details", "banking details", "bank info",
                "coordonnees bancaires", "datos bancarios", "coordinate bancarie", "dados bancarios", "bankgegevens",
                "bankdaten", "rekeninggegevens"),
    "member": ("kunden ?(?:nummer|nr)", "mitglieds ?(?:nummer|nr)", "personal ?(?:nummer|nr)", "pers\\.? ?nr",
               "matrikel ?(?:nummer|nr)", "mitarbeiter ?(?:nummer|nr)", "matricola", "matricula", "matricule",
               "personeelsnummer", "klantnummer", "lidnummer", "studentnummer", "leerlingnummer", "mecanografico",
               "legajo", "werknemers ?nummer", "medewerkers ?nummer", "personeels ?nr", "mitarbeiter ?id",
               "employee ?id", "staff ?id", "numero de (?:funcionario|colaborador|trabalhador|empleado|trabajador)",
               "numero d'(?:employe|agent)", "numero de (?:salarie|personnel)", "numero (?:di )?dipendente",
               "codice dipendente", "id (?:do|da|de) (?:colaborador|funcionario|trabalhador|empleado)"),
    "tax": ("tax id", "tax number", "tax code", "tax file number", "tfn", "pan", "itin",
            "ssn", "nino", "national insurance", "social security",
            "nif", "cif", "nss", "seguridad social", "insee", "nir", "securite sociale", "numero fiscal",
            "steuer ?id", "steuer ?(?:nummer|nr)", "steueridentifikationsnummer", "sozialversicherungs ?(?:nummer|nr)",
            "rentenversicherungs ?(?:nummer|nr)", "sv ?nummer", "codice fiscale", "bsn", "burgerservicenummer",
            "sofi ?nummer", "contribuinte", "niss", "seguranca social"),
    "licence": ("driver'?s licen[cs]e", "driver licen[cs]e", "driving licen[cs]e", "licen[cs]e plate", "number plate",
                "permis de conduire", "immatriculation", "fuhrerschein(?:nummer)?", "kennzeichen", "patente", "targa",
                "rijbewijs(?:nummer)?", "kenteken", "carta de conducao", "carteira de motorista", "cnh",
                "carnet de conducir", "permiso de conducir"),
    "policy": ("polic(?:en|y) ?(?:nummer|nr)", "versicherungs ?(?:nummer|nr)", "polis ?nummer", "poliza", "polizza",
               "apolice", "police d'assurance"),
    "case": ("az\\.", "aktenzeichen", "fall ?(?:nummer|nr)", "schaden ?(?:nummer|nr)", "vorgangs ?(?:nummer|nr)",
             "zaaknummer", "dossiernummer", "schadenummer", "expediente", "fascicolo"),
}  # fmt: skip
#: Everyday words that cue an identifier only with a connector ("number", "no.", ":") or an ID-shaped value.
WEAK_CUES: dict[str, tuple[str, ...]] = {
    "record": ("record", "patient", "chart", "file", "paciente", "historial", "dossier", "cartella", "paziente",
               "utente", "patienten"),
    "identity": ("identification", "identity", "ausweis", "tin", "sin", "ein", "pps", "nie", "secu"),
    "account": ("account", "bank account", "card", "cuenta", "compte", "konto", "conto", "rekening",
                "conta", "routing", "direct debit", "debito direto", "debito directo", "domiciliacion", "prelevement",
                "lastschrift", "addebito", "incasso", "hospital", "clinic", "clinica", "krankenhaus", "hopital",
                "ospedale", "ziekenhuis", "hospitalar"),
    "member": ("member", "membership", "customer", "client", "subscriber", "employee", "staff", "student", "user",
               "loyalty", "socio", "cliente", "empleado", "estudiante", "alumno", "afiliado", "adherent", "membre",
               "emp", "employe", "salarie", "etudiant", "mitglied", "mitarbeiter", "kunde", "dipendente", "tessera",
               "studente", "klant", "lid", "medewerker", "werknemer", "funcionario", "aluno", "estudante",
               "colaborador", "trabalhador", "trabajador", "collaborateur", "collaboratore", "personeel", "personal"),
    "licence": ("licence", "license", "licencia", "permis", "licenza", "licenca", "registration", "plate", "placa"),
    "policy": ("policy", "insurance", "seguro", "police", "assurance", "versicherung", "assicurazione", "polis",
               "verzekering"),
    "case": ("case", "claim", "caso", "siniestro", "reclamacion", "sinistre", "affaire", "reclamation", "fall",
             "schaden", "vorgang", "pratica", "sinistro", "zaak", "processo", "reclamacao"),
}  # fmt: skip
CONNECTORS = ("number", "numbers", "num", "no", "nos", "nr", "nro", "n", "nº", "n°", "id", "code", "codigo",
              "numero", "nummer", "numer", "#")  # fmt: skip
FILLERS = ("is", "was", "are", "my", "your", "his", "her", "their", "our", "the", "de", "du", "des", "del", "della",
           "di", "da", "do", "dos", "das", "van", "der", "die", "den", "la", "le", "el", "es", "est", "ist", "lautet",
           "e", "of", "mine", "mio", "mia", "mi", "su", "tu", "mon", "ma", "son", "sa", "votre", "mein", "meine",
           "meiner", "ihre", "ihr", "sein", "seine", "il", "lo", "suo", "sua", "mijn", "zijn", "haar", "uw", "luidt",
           "meu", "minha", "seu", "sua", "o", "a", "um", "uma", "un", "una", "une", "ein", "eine", "een", "it's",
           "sono", "soy", "ho", "heb", "tengo", "j'ai", "ich habe", "i have", "here", "ici", "aqui", "hier", "qui",
           "and", "y", "et", "und", "en", "dele", "dela", "deles", "suyo", "suya", "sien", "sienne", "hers", "new",
           "nuevo", "nouveau", "neue", "nuovo", "nieuwe", "novo", "war", "era", "fue", "foi", "etait", "c'etait",
           "c'est", "wordt", "werd")  # fmt: skip
# glued to a cue word: Reisepassnummer, passportNumber (folded: passportnumber), patientid, member_no
GLUED_CONNECTORS = ("nummer", "number", "numero", "num", "nr", "nro", "no", "nos", "id", "code", "codigo")


def _alternation(fragments: Iterable[str]) -> str:
    """One regex alternative per cue fragment, longest first; a space also matches a hyphen or nothing."""
    out = [fragment.replace(" ", r"[\s\-]*").replace("'", r"['’\s]?") for fragment in fragments]
    return "|".join(sorted(out, key=len, reverse=True))


_SEP = r"(?:[\s:#=()\[\]{}\"'’`_\-º°|…]|\.(?=\.)|(?<=\.)\.)*"  # dot leaders: "Membership no. ...... M-2009"
_WORDS = _alternation([*CONNECTORS, *FILLERS])
CUE_END = re.compile(
    rf"(?P<pre>(?<![a-z])(?:numero|nummer|number|n\.?[º°o]\.?)\s+(?:(?:de|di|du|do|da|del|of|van)\s+|d['’]\s?)?)?"
    rf"(?<![a-z])(?:(?P<strong>{_alternation(w for ws in STRONG_CUES.values() for w in ws)})"
    rf"|(?P<weak>{_alternation(w for ws in WEAK_CUES.values() for w in ws)}))"
    rf"(?P<glued>{'|'.join(GLUED_CONNECTORS)})?s?\.?(?![a-z])"
    rf"(?P<fill>(?:{_SEP}(?:{_WORDS})\.?(?![a-z])){{0,4}}){_SEP}$"
)
CONNECTOR = re.compile(rf"[:#=]|(?<![a-z])(?:{_alternation(CONNECTORS)})(?![a-z])")
CUE_ANY = re.compile(
    rf"(?<![a-z])(?:{_alternation(w for ws in (*STRONG_CUES.values(), *WEAK_CUES.values()) for w in ws)})(?![a-z])"
)
STRONG_GAP = re.compile(
    rf"(?<![a-z])(?:{_alternation(w for ws in STRONG_CUES.values() for w in ws)})(?:{'|'.join(GLUED_CONNECTORS)})?"
    rf"\.?{_SEP}[a-z]{{3,}}(?:{_SEP}(?:{_WORDS})\.?(?![a-z])){{0,2}}{_SEP}$"
)
BARE_CONNECTOR = re.compile(r"(?<![a-z])(?:no|nr|n[º°]|n\.[º°o]|number|numero|nummer|#)\.?[\s:#]*$")
ROLE_CUES = frozenset([*WEAK_CUES["member"], "patient", "paciente", "paziente", "patienten"]) - {"personal", "emp"}
# five or more letters and digits with at least one digit; groups joined by - . / : or, if they hold a digit, by
# a space; a short letter prefix ("AB 123456") is kept unless it is the cue itself ("MRN 00451234")
ID_TOKEN = re.compile(
    r"(?<![\w@/.\-])(?P<prefix>[A-Z]{1,3} (?=\d))?(?:[A-Za-z]*\d[A-Za-z0-9]*|[A-Za-z]+(?=[\-./][A-Za-z0-9]))"
    r"(?:[\-./:][A-Za-z0-9]+| (?=[A-Za-z]{0,3}\d)[A-Za-z0-9]+| [A-Z]{1,2}(?= \d))*(?: [A-Z](?![\w@]))?(?![\w@])"
)
# never an identifier: a year range, a time, a decimal or price, a measurement
NOT_AN_ID = re.compile(r"(?:1[5-9]|20)\d\d-(?:1[5-9]|20)?\d\d|\d{1,2}:\d\d(?::\d\d)?|\d+[.,]\d{1,2}|\d+[a-z]{1,3}")
# not an identifier after an everyday cue word: thousands, a date, a version
NOT_AN_ID_WEAK = re.compile(
    r"\d{1,3}(?:\.\d{3})+|\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4}|v?\d{1,3}(?:\.\d{1,3}){1,3}"
)


def fold(text: str) -> str:
    """Lower case without accents (`Clínica` → `clinica`), for matching cue words."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def id_shaped(token: str) -> bool:
    """A value that reads as an identifier rather than a count: letters with digits, separators, or a
    leading zero."""
    digits = sum(ch.isdigit() for ch in token)
    if re.search(r"[\-./ ]", token) and digits >= 4:
        return True
    if re.search(r"[A-Z]", token) and digits >= 3:
        return True
    if digits >= 8 and token.isdigit():
        return True  # a count is written with thousands separators long before it has eight digits
    return token.startswith("0") and digits >= 5


def find_cued_ids(text: str) -> Iterator[Span]:
    """ID-like values right after a cue word (see the module docstring); `NATIONAL_ID` when one of the
    validators accepts the value, else `ID_NUMBER` (scored 0.96 after a naming cue or a connector, so it
    outranks a phone guess over the same digits, else 0.8)."""
    for m in ID_TOKEN.finditer(text):
        start = m.start()
        if m.group("prefix") and CUE_END.search(fold(text[max(0, m.end("prefix") - 64) : m.end("prefix")])):
            start = m.end("prefix")  # "MRN 00451234": the letters are the cue, not the value
        token = text[start : m.end()]
        if " " in token and not token[: token.index(" ")].strip("-./:").isdigit():
            # "Mitarbeiter-ID 482135": the letters before the space may be the cue, glued by a dash
            head = token[: token.index(" ")]
            if not any(ch.isdigit() for ch in head) and CUE_END.search(
                fold(text[max(0, start - 48) : start] + head + " ")
            ):
                start += len(head) + 1
                token = text[start : m.end()]
        if not id_like(token):
            continue
        window = fold(text[max(0, start - 64) : start])
        cue = CUE_END.search(window)
        if cue is None and STRONG_GAP.search(window):
            strong = connected = True  # "matricola universitaria 332668": one qualifying word after the cue
        elif cue is None:
            # "Member Brent Knox (no. M-2001-30601)": a bare connector, the cue earlier in the clause
            clause = re.split(r"(?<!\bno)(?<!\bnr)(?<!\bn[º°o])[.!?;]\s|\n", window)[-1]
            earlier = CUE_ANY.search(clause)
            if not (BARE_CONNECTOR.search(clause) and earlier):
                continue
            role = earlier.group() in ROLE_CUES and token.isdigit() and not in_quantity(text, start, m.end())
            if not (id_shaped(token) or role):
                continue
            strong, connected = False, True
        else:
            strong = bool(cue.group("strong"))
            connected = bool(cue.group("pre") or cue.group("glued")) or bool(
                CONNECTOR.search(window[cue.end("strong" if strong else "weak") :])
            )
            # "Employee 758970 (...)": a number right after a person's role names that person, unless it counts
            role = cue.group("weak") in ROLE_CUES and not cue.group("fill").strip(" \t-")
            if role and token.isdigit() and not in_quantity(text, start, m.end()):
                connected = True
        if not strong and (NOT_AN_ID_WEAK.fullmatch(token) or not (connected or id_shaped(token))):
            continue
        if national_id_kind(token):
            yield span_at(text, start, m.end(), "NATIONAL_ID")
        else:
            yield span_at(text, start, m.end(), "ID_NUMBER", score=0.96 if strong or connected else 0.8)
    yield from find_table_ids(text)


def id_like(token: str, digits: int = 1) -> bool:
    """Five or more letters and digits, `digits` of them digits at least, and not a year range, a time, a decimal
    or price, or a measurement (`NOT_AN_ID`)."""
    return (sum(ch.isalnum() for ch in token) >= 5 and sum(ch.isdigit() for ch in token) >= digits
            and not NOT_AN_ID.fullmatch(token))  # fmt: skip


def find_table_ids(text: str) -> Iterator[Span]:
    """ID-like cells under a header cell that cues one, in delimited tables ("Employee ID | Name" over
    "041394 | Thomas Simmons", or `employee_id,first_name` over `122998,Paul`)."""
    cued: dict[str, bool] = {}
    for cell in table_cells(text):
        if cell.header not in cued:
            words = fold(header_words(cell.header))
            cued[cell.header] = bool(CUE_ANY.search(words) or CONNECTOR.search(words))
        value = cell.value
        # as after a cue word, with two digits at least (a German passport C01X00T47 has four, FFGFNFZ89 two)
        if cued[cell.header] and ID_TOKEN.fullmatch(value) and id_like(value, digits=2):
            kind = "NATIONAL_ID" if national_id_kind(value) else "ID_NUMBER"
            yield span_at(text, cell.start, cell.start + len(value), kind, score=0.9)
