"""Street addresses: a street type, a name and a house number, in the order each country writes them, plus
the unit, postcode, city and state that follow.

- Number first (US, CA, UK, IE, AU, NZ, FR): "1600 Amphitheatre Pkwy", "221B Baker St Apt 4",
  "12 rue de la Paix", "10 Downing Street".
- Type first, number after (ES, IT, PT, BR, BE/CH French, Latin America): "Calle de Alcalá 42, 3º B",
  "C/ Mayor 5", "Via Roma 10", "Rua Augusta 100", "Avenida Paulista, 1578", "Rue de la Loi 16".
- Name and type in one word, number after (DE, AT, CH, NL, Nordics): "Hauptstraße 5", "Musterstr. 12a",
  "Keizersgracht 123"; or as two words: "Berliner Straße 5", "Karl-Marx-Allee 33".

A tail extends the span only when it holds a postcode or a state code ("Mountain View, CA 94043",
"London SW1A 2AA", "28014 Madrid", "1015 CJ Amsterdam", "São Paulo, SP, 01310-200", "Newtown NSW 2042"):
a bare city after a comma is too often the next clause. Precision: the street name must be capitalised
and sit between number and type ("I walked 5 streets", "Chapter 12 Street Fighter", "the 3 main roads" do
not match); English types that are also common words (Way, Place, Court, Square, Hill, Park ...) need a
tail, a unit, or an address cue ("lives at", "address") before them; "Route 66" and "Highway 7" are roads,
not addresses, and are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tandemlm.privacy.identifiers import fold
from tandemlm.privacy.spans import Span, span_at, union

UP = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĮİŁŃŇŌŐŒŘŚŞŠŢŤŪŮŰŲŹŻŽ"
LETTER = r"[^\W\d_]"
CAP = rf"[{UP}]{LETTER}*(?:['’]{LETTER}+)?(?:-[{UP}]?{LETTER}+)*"  # Baker, O'Connell, Saint-Germain
CAP_WORD = rf"(?:{CAP}|[{UP}]\.)"  # also an initial: "J. F. Kennedy"

EN_STRONG = (
    "Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Parkway|Pkwy|Pky|Highway|Hwy|Terrace|Tce|Ter"
    "|Crescent|Cres|Cresc|Court|Ct|Place|Pl|Close|Cl|Gardens|Gdns|Expressway|Expy|Freeway|Fwy|Turnpike|Tpke"
)
EN_WEAK = (
    "Way|Square|Sq|Circle|Cir|Hill|Grove|Mews|Row|Walk|Park|Trail|Trl|Loop|Plaza|Parade|Pde|Point|Rise|Green|Alley"
)
FR_TYPES = (
    "rue|avenue|av\\.|ave\\.|boulevard|bd|boul\\.|bld|place|pl\\.|allée|allee|impasse|imp\\.|chemin|ch\\.|quai"
    "|cours|route|rte|square|passage|faubourg|fbg|chaussée|voie|sentier|rond-point|esplanade|promenade|montée"
    "|villa|cité|parvis|ruelle|résidence"
)
# types written before the name, capitalised (Calle, Via, Rua, Rue ...) or abbreviated (C/, Avda., Pza.)
ROMANCE_TYPES = (
    "Calle|C/|C\\.|Cl\\.|Avenida|Avda\\.?|Av\\.?|Pasaje|Pasadizo|Cañada|Cuesta|Costanilla|Urbanización|Polígono"
    "|Senda|Acceso|Muelle|Travessera|Avd\\.|Paseo|P\\.º|Pº|Plaza|Pza\\.?|Pl\\.|Plazuela|Ronda|Camino"
    "|Carrera|Cra\\.?|Carretera|Ctra\\.?|Travesía|Trav\\.|Glorieta|Rambla|Callejón|Vía|Passeig|Pg\\.|Carrer|Cr\\."
    "|Calzada|Bulevar|Prolongación|Diagonal|Transversal|Urbanización|Urb\\."
    "|Via|Viale|V\\.le|Piazza|P\\.za|P\\.zza|Piazzale|P\\.le|Corso|C\\.so|Largo|Vicolo|Lungomare|Lungotevere"
    "|Strada|Contrada|Borgo|Salita|Vico|Galleria"
    "|Rua|Travessa|Tv\\.|Praça|Pç\\.|Alameda|Estrada|Estr\\.|Rodovia|Rod\\.|Calçada|Beco|Praceta"
    "|Ladeira|Largo|Viela|Quadra|Setor"
    "|Rue|Avenue|Boulevard|Bd|Chaussée|Chemin|Place|Quai|Allée|Impasse|Route|Cours"
)
PARTICLES = (
    "de|del|de la|de las|de los|dels|d'|l'|la|las|los|el|y|i|e|da|das|do|dos|di|della|delle|dei|degli|dello|del"
    "|du|des|le|les|de l'|sur|sous|au|aux|en|von|van|der|den|het|'t|am|an|im|zum|zur|of|the|and"
)
# compounds: name and type in one word, then the number (Hauptstraße 5, Keizersgracht 123)
COMPOUND = (
    "straße|strasse|str\\.|gasse|allee|platz|damm|ufer|chaussee|steig|pfad|weg|graben|markt"
    "|straat|laan|plein|gracht|kade|singel|dijk|steeg|dreef|plantsoen|boulevard|hof|pad|baan|wal|veld|erf"
    "|gatan|vägen|gränd|torget|vej|allé|veien"
)
DE_WORDS = "Straße|Strasse|Str\\.|Gasse|Allee|Platz|Weg|Damm|Ufer|Ring|Chaussee|Markt|Steig|Pfad|Graben"

NUMBER = r"\d{1,4}(?:[ ]?[A-Za-z](?![\w]))?(?:[-/]\d{1,4}[A-Za-z]?)*"  # after the street: 4 digits at most
EN_UNIT = (
    r"(?:,?[ ]+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room|Bldg|Building|Dept|Flat|Level|Lvl|Lot|PO Box)"
    r"\.?[ ]*#?[ ]*[A-Z0-9][A-Z0-9-]{0,5}\b|[ ]*,?[ ]*#[ ]?[A-Z0-9][A-Z0-9-]{0,5}\b)"
)
ROMANCE_UNIT = (
    r"(?:,?[ ]*(?:\d{1,2}[ ]?[º°ª](?:[ ]?-?[ ]?(?:[A-Z](?!\w)|izq(?:da|uierda)?\.?|dcha\.?|der(?:echa)?\.?|dr\.?|"
    r"\d{1,2}[ºª]?))?|(?:piso|puerta|pta\.|esc\.|escalera|bajo|planta|apto\.?|apt\.?|ap\.|apartamento|sala|"
    r"conj\.|bloco|andar|int\.|interno|scala|sc\.|local|loja|casa|bis|ter|[A-Z](?=,)"
    r"|(?i:piano|appartamento|app\.|etage|étage|wohnung|whg\.|verdieping|bus|huis|piso|puerta|planta|apto\.?|apt\.?"
    r"|bajo|escalera|andar|bloco))(?:[ ]?\w{1,4})?))"
)
STREET_CUE = re.compile(
    r"(?:\b(?:lives?|living|lived|located|situated|based|reside[sd]?|moved|ship(?:ped)?|send|deliver(?:ed)?|mail)"
    r"(?:[ ]\w+)?[ ]+(?:at|to|on|in)|\baddress(?:e[sd])?(?:[ ]is)?:?|\bat)[ ]+$",
    re.IGNORECASE,
)

US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH"
    "|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI"
)
REGIONS = rf"(?:{US_STATES}|AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT|NSW|VIC|QLD|TAS|ACT|SA|WA|NT|AC|AM|AP|BA|CE|DF|ES" \
          rf"|GO|MA|MG|MS|MT|PB|PE|PI|PR|RJ|RN|RO|RR|RS|SC|SE|SP|TO)"  # fmt: skip
POSTCODE = (
    r"(?:[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[ABD-HJLNP-UW-Z]{2}"  # UK
    r"|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ ]?\d[ABCEGHJ-NPRSTV-Z]\d"  # CA
    r"|\d{5}-\d{4}|\d{5}-?\d{3}(?!\d)|\d{4}-\d{3}"  # US ZIP+4, BR CEP, PT
    r"|\d{4}[ ]?[A-Z]{2}(?![\w])"  # NL
    r"|(?:[A-Z]{1,2}-)?\d{4,5}"  # DE/FR/ES/IT 5 digits, AT/CH/BE/DK/AU/NZ 4 digits, D-10115, CH-8001
    r"|[AC-FHKNPRTV-Y]\d{2}[ ]?[AC-FHKNPRTV-Y0-9]{4}"  # IE Eircode
    r"|\d{3}[ ]\d{2}"  # SE, CZ, SK, GR
    r"|\d{6}|\d{3}[ ]\d{3})(?![\w-])"  # IN PIN
)
_CAP_CITY = rf"{CAP}['’]?(?![\w'’]|-[^\W\d])"  # not the "SW" of "SW1A 2AA"
_CITY_PARTICLES = "de|del|la|le|sur|am|an|der|di|do|da|upon|on|en|im|bei|aan|den"
CITY = (
    rf"(?:(?:{_CITY_PARTICLES})[ ](?={_CAP_CITY})|'s-)?"  # de Hoef, 's-Hertogenbosch
    rf"(?:[{UP}][a-z]{{0,2}}\.[ ])?"  # St. Kilda, Mt. Eliza, Ft. Myers
    r"(?:\d{1,2}e[ ](?=[A-Z]))?"  # 2e Exloërmond: Dutch villages numbered by an ordinal
    rf"{_CAP_CITY}(?:(?:[ -]|[ ]&[ ])(?:{_CAP_CITY}|(?:{_CITY_PARTICLES})(?=[ ]{_CAP_CITY})))*"
)
_CITY_PIECE = re.compile(CITY)
_REGION_PIECE = re.compile(rf"\(?(?:{REGIONS})\)?(?![\w])|\([A-Z]{{2}}\)")  # (RM): an Italian province
_POST_PIECE = re.compile(rf"(?:CEP:?[ ]?|C\.?P\.?[ ]?)?{POSTCODE}(?:[ ]+CEDEX(?:[ ]\d{{1,2}})?)?")
_GAP = re.compile(r"[ ]*[,\-–/][ ]*|[ ]*,?[ ]*\n[ \t]*|[ ]+")

EN_ADDRESS = re.compile(
    rf"(?<![\w$€£.,-])(?P<num>\d{{1,6}}[A-Za-z]?(?:-\d{{1,5}}[A-Za-z]?)?),?[ ]+"
    rf"(?:(?:[NSEW]|NE|NW|SE|SW|North|South|East|West)\.?[ ]+)?"
    rf"(?P<name>(?:(?!(?:{EN_STRONG}|{EN_WEAK})\b){CAP_WORD}[ ]+|\d{{1,3}}(?:st|nd|rd|th)[ ]+){{1,4}}?)"
    rf"(?P<type>(?:{EN_STRONG})|(?P<weak>{EN_WEAK}))\b\.?"
    rf"(?:[ ]+(?:[NSEW]|NE|NW|SE|SW)\.?(?![\w]))?"
    rf"(?P<unit>{EN_UNIT})?"
)
FR_ADDRESS = re.compile(
    rf"(?<![\w$€£.,-])\d{{1,4}}(?:[ ]?(?:bis|ter|quater|[A-D])(?![\w]))?,?[ ]+(?P<type>(?i:{FR_TYPES}))(?![\w])"
    rf"(?P<name>(?:[ ]+(?:(?:{PARTICLES})[ ]+|d'|l')?(?:{CAP_WORD}))+)"
)
# French types that are also English words ("4 Place Value", "3 Square Feet") need French evidence
FR_ONLY = frozenset(
    ["rue", "bd", "boul.", "bld", "allée", "allee", "impasse", "imp.", "quai", "faubourg", "fbg", "chaussée",
     "rond-point", "montée", "cité", "parvis", "ruelle", "résidence", "chemin"]
)  # fmt: skip
FR_EVIDENCE = re.compile(r"[ ]+(?:de|du|des|la|le|les|d'|l'|Saint|Sainte|St|Ste)\b")
ROMANCE_ADDRESS = re.compile(
    rf"(?<![\w])(?:{ROMANCE_TYPES})(?![\w])[ ]*"
    rf"(?:(?:(?:{PARTICLES})[ ]+|d'|l'|dell'|all')?(?:{CAP_WORD}|\d{{1,2}}[ ]de[ ]{CAP})[ ]*){{1,6}}?"
    rf"(?:,[ ]*|[ ]+)(?:(?:n[º°.]?|nº|n\.º|núm\.?|no\.?|nr\.?)[ ]?)?(?:{NUMBER}|s/n)(?![\w/])"
    rf"(?:{ROMANCE_UNIT})*"
)
COMPOUND_ADDRESS = re.compile(
    rf"(?<![\w])(?:{CAP}(?:{COMPOUND})|[{UP}]{LETTER}{{3,}}ring|{CAP}-Ring"
    rf"|{CAP}-(?i:{COMPOUND})|(?:{CAP}[ ]+){{1,3}}(?:{DE_WORDS}))(?![\w])[ ]*"
    rf"(?:{NUMBER})(?![\w/])(?:{ROMANCE_UNIT})*"
)


# any street whose tail holds a postcode: number, capitalised words (the type may be one no list has: "Patty
# Club", "Kay Haven", "Dua Nagar"), a unit; or a French type without a number ("avenue Thérèse Cordier, 10786 ...")
UNIT_WORDS = (
    "apt|apartment|suite|ste|unit|flat|studio|room|shop|plot|villa|level|floor|fl|lvl|block|blk|bldg|building"
    "|h\\.?[ ]?no|house[ ]no"
)
_BREAK = r"(?:[ ]+|[ ]*\n[ \t]*)"  # a space, or a line end in a multi-line address
ANCHORED = re.compile(
    rf"(?<![\w$€£.,/-])(?:(?i:{UNIT_WORDS})\.?[ ]?"
    rf"(?:\d{{1,5}}[A-Za-z]?,?{_BREAK})?)?\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?,?{_BREAK}"
    rf"(?:{CAP_WORD}[ ]+){{0,3}}{CAP}(?:{EN_UNIT})?(?=,|[ ]*\n)"
    rf"|(?P<fr>(?<![\w])(?i:{FR_TYPES})(?:[ ]+(?:(?:{PARTICLES})[ ]+|d'|l')?{CAP_WORD}){{1,4}}(?=,))"
    # type first, of a type no list has ("Vial de ...", "Canale ...", "Incrocio ...", "R. do ..."), then the number
    rf"|(?<![\w.])[{UP}]{LETTER}*\.?(?:[ ]+(?:(?:{PARTICLES})[ ]+|d'|l')?{CAP_WORD}){{1,4}}(?:,[ ]*|[ ]+)"
    rf"(?:{NUMBER}|[sS]/[nN])(?![\w/])(?:{ROMANCE_UNIT})*(?=,|[ ]*\n)"
)


# a street of unknown type counts with an address word before it, or a postcode that is more than digits
ADDRESS_CUE = re.compile(
    r"(?:address|addr|adresse|adres|anschrift|direccion|domicilio|indirizzo|morada|endereco|residenza|wohnort"
    r"|woonachtig|wohnhaft|domicilie|live[sd]? (?:at|in|on)|living at|moved to|move to|post (?:it |the \w+ )?to"
    r"|ship(?:ped)? to|send (?:it )?to|deliver(?:ed)? to|vivo en|vive en|habite|j'habite|wohne|woon|vivo in|abito"
    r"|moro|resido|mudou-se para|se ha mudado a|demenage|umgezogen|verhuisd)(?:[ ]\w{1,3}){0,2}\W{0,6}$"
)
STRICT_TAIL = re.compile(
    rf"(?<![\w])(?:{REGIONS})(?![\w])|\([A-Z]{{2}}\)|[A-Z]{{1,2}}\d[A-Z\d]?[ ]?\d[A-Z]{{2}}"
    rf"|\d{{4}}[ ]?[A-Z]{{2}}(?![\w])"
    rf"|\d{{5}}-\d{{3,4}}|\d{{4}}-\d{{3}}|\d{{6}}"
)


def _needles(alternation: str) -> tuple[str, ...]:
    """The lower-case literals of a regex alternation of street types (`Avda\\.?` → `avda`), for prefilters."""
    return tuple(re.sub(r".\?$", "", word.replace("\\.", ".")).lower() for word in alternation.split("|"))


# a format's regex runs only on a text whose lower-case form holds one of its street types
FR_NEEDLES = _needles(FR_TYPES)
ROMANCE_NEEDLES = _needles(ROMANCE_TYPES)
COMPOUND_NEEDLES = _needles(COMPOUND) + _needles(DE_WORDS)
NOT_STREET_NAMES = frozenset(["Chapter", "Page", "Section", "Part", "Step", "Level", "Figure", "Table", "Room"])


def find_addresses(text: str) -> Iterator[Span]:
    """Street addresses in the formats of the module's countries, with their unit, postcode and city."""
    if not re.search(r"\d|s/n", text):
        return  # every format here has a house number (or the Spanish "sin número")
    found: list[Span] = []
    low = text.lower()
    for m in EN_ADDRESS.finditer(text):
        name = m["name"].split()
        if not name or name[0] in NOT_STREET_NAMES:
            continue
        end = _tail(text, m.end())
        cue = STREET_CUE.search(text[max(0, m.start() - 40) : m.start()])
        if m["weak"] and end == m.end() and not m["unit"] and not cue:
            continue  # "10 Best Way", "3 Point Play": the word is a common noun here
        found.append(span_at(text, m.start(), end, "ADDRESS", score=0.85))
    for m in FR_ADDRESS.finditer(text) if any(n in low for n in FR_NEEDLES) else ():
        end = _tail(text, m.end())
        kind = m["type"]
        if kind.islower() or kind.lower() in FR_ONLY or FR_EVIDENCE.match(m["name"]) or end > m.end():
            found.append(span_at(text, m.start(), end, "ADDRESS", score=0.85))
    for regex, needles in ((ROMANCE_ADDRESS, ROMANCE_NEEDLES), (COMPOUND_ADDRESS, COMPOUND_NEEDLES)):
        for m in regex.finditer(text) if any(n in low for n in needles) else ():
            found.append(span_at(text, m.start(), _tail(text, m.end()), "ADDRESS", score=0.85))
    for m in ANCHORED.finditer(text):
        end = _tail(text, m.end(), need_postcode=True)
        tail = text[m.end() : end]
        cue = ADDRESS_CUE.search(fold(text[max(0, m.start() - 40) : m.start()]))
        if end > m.end() and (m["fr"] or cue or STRICT_TAIL.search(tail) or "\n" in tail):
            found.append(span_at(text, m.start(), end, "ADDRESS", score=0.8))
    yield from union([found])  # the formats overlap ("25 Rue du Faubourg ..." is number-first and type-first)


def _tail(text: str, end: int, *, need_postcode: bool = False) -> int:
    """Where an address ends once its tail is read: city, region and postcode pieces after the street, kept
    up to the last postcode or region (and the city right after a continental postcode). The pieces may go on
    over two more lines when a postcode is among them ("Rohtallee 3/4\n65395 Schwerin", "8 Kay Haven\nAlanton\n
    W17 8LG"). With `need_postcode`, a tail without a postcode adds nothing."""
    pos, best, pieces, lines = end, end, 0, 0
    last_post = posted = post_alone = False
    while pieces < 6:
        gap = _GAP.match(text, pos)
        if gap is None:
            break
        newline = "\n" in gap.group()
        lines += newline
        if lines > 2:
            break
        at = gap.end()
        if (piece := _POST_PIECE.match(text, at)) is not None:
            pos, best, last_post, posted = piece.end(), piece.end(), True, True
            post_alone = newline  # "8503 CO" on its own line: the city may follow on the next
        elif (piece := _REGION_PIECE.match(text, at)) is not None and not newline:
            pos, last_post = piece.end(), False
            best = pos if posted or (not need_postcode and not lines) else best
        elif (piece := _CITY_PIECE.match(text, at)) is not None:
            if re.match(r"[ \t]*[:=]", text[piece.end() :]) or (newline and last_post and not post_alone):
                break  # "Phone:": the next field's label; "..., 2282\nThanks": the next line
            pos = piece.end()
            if last_post:
                best = pos  # 28014 Madrid, 75002 Paris
            last_post = False
        else:
            break
        pieces += 1
    if lines and not posted:
        return _tail_one_line(text, end, need_postcode)
    return best if posted or not need_postcode else end


def _tail_one_line(text: str, end: int, need_postcode: bool) -> int:
    """`_tail` without crossing a line end (a tail with no postcode stays on the street's line)."""
    line_end = text.find("\n", end)
    return _tail(text[: line_end if line_end >= 0 else len(text)], end, need_postcode=need_postcode)
