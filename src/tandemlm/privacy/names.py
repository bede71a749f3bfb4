"""Person names where the text itself says one follows, for the names NER misses (short prompts, non-English
text, lower-resource names): self-introductions, greetings, form labels, titles and signatures, in
en/es/fr/de/it/nl/pt.

A name is one to five capitalised tokens (accents, hyphens, apostrophes: "José-María", "O'Brien") with the
particles between them ("Ludwig van Beethoven", "María de la Cruz"); it stops at a lower-case word, a line
end or punctuation. The span is the name only: "Dr. <PERSON_1>", "Dear <PERSON_1>,".

Precision rules: a capitalised word that is not a name in this position ("Dear Sir or Madam", "Hi Team,",
"I'm Happy to help", "I am Python developer", "Liebe Grüße") is in `NOT_NAMES` and ends or rejects the
name. Self-introductions that also introduce states and roles ("I'm ...", "I am ...", "je suis", "soy",
"ik ben", "eu sou") are weak cues: the name must be followed by punctuation (a parenthesis, a dash), a line
end, a conjunction or preposition ("I'm Ann and ...", "I am Ann from ...", "I'm Ann (ann@...)"), never by
another word ("I am Python developer").
Informal greetings ("Hi X", "Hallo X") need the name to be followed by punctuation or a line end, and
greetings and signature closings count only at the start of a line or sentence. Form labels must be
capitalised ("Name:", not a YAML `name:` key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tandemlm.privacy.name_context import find_context_names
from tandemlm.privacy.name_fields import find_field_names
from tandemlm.privacy.spans import Span, span_at

UP = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĮİŁŃŇŌŐŒŘŚŞŠŢŤŪŮŰŲŹŻŽ"
LOW = "a-zß-öø-ÿāăąćčďđēęěğįıłńňōőœřśşšţťūůűųźżž"
TOKEN = re.compile(
    rf"(?:Mc|Mac|O['’]|D['’]|d['’])?[{UP}][{LOW}]+(?:['’][{LOW}]+)?(?:-[{UP}]?[{LOW}]+)*(?![\w'’-])"
    rf"|[{UP}]\.(?=[ \t]+[{UP}])"  # an initial inside a name: John F. Kennedy
)
CAPS_TOKEN = re.compile(rf"[{UP}]{{2,}}(?:-[{UP}]{{2,}})*(?![\w'’-])")  # JOHN SMITH in a form field
PARTICLES = re.compile(
    r"(?:(?:de la|de las|de los|van der|van den|van de|von der|de|del|van|von|vom|zu|zur|di|da|das|dos|do|du|des"
    r"|le|la|bin|ibn|al|el|ten|ter|y|e|dei|della|degli|'t)[ \t]+)+"
)
SPACE = re.compile(r"[ \t]+")
TITLES = re.compile(
    r"(?:Mrs|Mr|Ms|Mx|Miss|Dr|Drs|Prof|Sres|Srta|Sra|Sr|Dña|Dª|Mme|Mlle|Herr|Frau|Sig\.ra|Sig\.na|Sig|Signor|Signora"
    r"|Signorina|Dott\.ssa|Dott|Avv|Ing|Dhr|Mevr|Mw|Monsieur|Madame|Mademoiselle|Señor|Señora|Señorita|Senhor"
    r"|Senhora|Senhorita|Doña|Doktor|Professor|Professorin|Mag|Dipl\.-Ing|heer|mevrouw|meneer|señor|señora"
    r"|signor|signora|senhor|senhora|monsieur|madame|Lic|Ldo|Lda|Eng|Exmo|Exma)\.?(?![\w])[ \t]*"
)
TITLE_CUE = re.compile(
    r"(?<![\w.])(?:Mrs|Mr|Ms|Mx|Dr|Prof|Sres|Srta|Sra|Sr|Dña|Mme|Mlle|Herr|Frau|Sig\.ra|Sig\.na|Sig|Signor|Signora"
    r"|Dott\.ssa|Dott|Avv|Dhr|Mevr|Monsieur|Madame|Mademoiselle|Señor|Señora|Señorita|Senhor|Senhora|Doña|Miss)"
    r"\.?[ \t]+(?=[A-ZÀ-Þ])"
    r"|(?<![\w.])(?<![A-Z]\.[ ])M\.[ \t]+(?=[A-ZÀ-Þ][a-zà-ÿ])"  # M. Dupont, not the M. of J. M. Smith
)
# greetings and closings are matched where a line or a sentence starts (`_starts`)
SENTENCE_START = re.compile(r"\n|[.!?][ \t]+|(?<!\w)f?[\"'“‘]")  # a string literal starts one: body=f"Hi Ann, ..."
STRONG_CUE = re.compile(
    r"\b(?:my name is|my name's|call me|(?:(?:hi|hello|hey|good (?:morning|afternoon|evening))[ \t]*[,!.]?[ \t]*)"
    r"this is|(?:(?:hoi|hallo|goedemorgen|goedemiddag|goedenavond|dag)[ \t]*[,!.]?[ \t]*)met"
    r"|signed(?: by)?:?|me llamo|mi nombre es|firmado(?: por)?:?|je m'appelle|je m’appelle|mon nom est"
    r"|signé(?: par)?:?|ich heiße|ich heisse|mein name ist|gez\.|gezeichnet:?|mi chiamo|il mio nome è|firmato:?"
    r"|ik heet|mijn naam is|getekend:?|meu nome é|o meu nome é|me chamo|chamo-me|assinado(?: por)?:?)[ \t]+",
    re.IGNORECASE,
)
WEAK_CUE = re.compile(r"\b(?:i'm|i’m|i am|soy|je suis|ik ben|eu sou|sono)[ \t]+", re.IGNORECASE)
# prefilters: a cue regex runs only on a text whose lower-case form holds one of its words
STRONG_WORDS = ("name", "call me", "this is", "met ", "signed", "llamo", "nombre", "firmado", "appelle", "nom est",
                "signé", "hei", "gez", "chiamo", "nome", "firmato", "heet", "naam", "getekend", "chamo",
                "assinado")  # fmt: skip
WEAK_WORDS = ("i'm", "i’m", "i am", "soy", "je suis", "ik ben", "eu sou", "sono")
FORMAL_GREETING = re.compile(
    r"[ \t]*(?:dear|dearest|estimad[oa]s?|querid[oa]s?|distinguid[oa]|cher|chère|chers|sehr geehrter?"
    r"|gentile|gentilissim[oa]|egregi[oa]|car[oa]|caríssim[oa]|beste|geachte|prezad[oa]|estimad[oa])[ \t]+",
    re.IGNORECASE,
)
INFORMAL_GREETING = re.compile(
    r"[ \t]*(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening)|hola|buenos días|buenas"
    r"|bonjour|bonsoir|salut|coucou|hallo|guten tag|moin|servus|liebe|lieber|ciao|salve|buongiorno|buonasera"
    r"|hoi|hallo|goedemorgen|goedemiddag|olá|ola|oi|bom dia|boa tarde)[ \t]*,?[ \t]+",
    re.IGNORECASE,
)
LABEL = re.compile(
    r"(?:^|(?<=[,;|])[ \t]*)[ \t]*(?:Full [Nn]ame|FULL NAME|Name|NAME|First [Nn]ame|Last [Nn]ame|Surname"
    r"|Patient(?: [Nn]ame)?|PATIENT|Patientin|Patiënt|Client(?: [Nn]ame)?|Customer(?: [Nn]ame)?"
    r"|Employee(?: [Nn]ame)?|Contact(?: [Nn]ame)?"
    r"|Account [Hh]older|Cardholder|Attn|Attention|Author|Signed|Signature|Applicant|Student(?: [Nn]ame)?"
    r"|From|To|Cc|Bcc|Nombre(?: completo)?|Apellidos?|Paciente|Titular|Nom|Prénom|Nom complet|Vorname|Nachname"
    r"|Nome(?: completo)?|Cognome|Sobrenome|Naam|Voornaam|Achternaam|Klant|Kunde|Cliente)[ \t]*(?::|\.{3,}|…+)[ \t]*",
    re.MULTILINE,
)
CLOSING = re.compile(
    r"[ \t]*(?:best|best regards|best wishes|regards|kind regards|warm regards|warmest regards|with regards"
    r"|sincerely|yours sincerely|sincerely yours|yours truly|yours faithfully|yours|cheers|thanks|thank you"
    r"|many thanks|thanks again|respectfully|cordially|all the best|take care|love|xoxo|saludos|un saludo"
    r"|saludos cordiales|atentamente|cordialmente|un abrazo|gracias|cordialement|bien cordialement|bien à vous"
    r"|amitiés|merci|bisous|mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße"
    r"|liebe grüße|beste grüße|herzliche grüße|mfg|lg|vg|danke|cordiali saluti|distinti saluti|saluti|un saluto"
    r"|grazie|a presto|met vriendelijke groet|vriendelijke groet|met vriendelijke groeten|groeten|hartelijke groet"
    r"|groetjes|bedankt|atenciosamente|abraços|cumprimentos|obrigad[oa]|um abraço|beijos|abraço|gruß|gruss|groet"
    r"|com os melhores cumprimentos|melhores cumprimentos|bien à toi|bien à vous|a bientôt|à bientôt|bises"
    r"|un cordial saludo|muchas gracias|herzliche grüsse|liebe grüsse|cari saluti|tanti saluti|hartelijke groeten)"
    r"[ \t]*[,!.]?"
    r"(?:[ \t]*\n(?:[ \t]*\n)?|[ \t]+)[ \t]*",
    re.IGNORECASE,
)
DASH = re.compile(r"[ \t]*(?:—|–|--)[ \t]*")
WEAK_FOLLOW = re.compile(
    r"(?:[ \t]*(?:$|[,.!?;:()\n]|[-–—][ \t])"
    r"|[ \t]+(?:and|from|here|with|at|of|speaking|calling|writing"
    r"|y|de|et|und|aus|e|en|uit|da|di|von|van|do|del|ich)\b)",
    re.MULTILINE,
)
END_OF_ADDRESS = re.compile(r"[ \t]*(?:$|[,.!?;:\n]|[ \t]+[-–—])", re.MULTILINE)
END_OF_LINE = re.compile(r"[ \t]*(?:$|\n|[,|(<]|[ \t]+[-–—])", re.MULTILINE)

#: Capitalised words that follow these cues without being names, by language; a name stops before one.
NOT_NAMES_BY_LANGUAGE: dict[str, str] = {
    "en": """
        I A An The This That These Those My Your Our His Her Its Their We You He She It They Me Us Him Them All
        Any Sir Sirs Madam Madams Ladies Gentlemen Team Everyone Everybody There Folks Guys Friends Friend
        Colleague Colleagues Customer Customers Client Clients Member Members Applicant Applicants Candidate
        Recruiter Hiring Manager Managers Admin Administrator User Users Support Sales Staff Student Students
        Parent Parents Reader Readers Sender Recipient Owner Owners Partner Partners Valued Dear Hello Hi Hey
        Thanks Thank Please Yes No Welcome Good Morning Afternoon Evening Night Again World Mom Mum Dad Mother
        Father Grandma Grandpa Sis Bro Honey Babe Love Darling Sweetie Buddy Mate Pal Boss Doc Sweetheart Baby
        Kids Children Boys Girls Board Committee Editor Editors Reviewer Reviewers Organizers Community
        Neighbours Neighbors Human Happy Glad Sorry Sure Fine Great Okay Ok OK Here Back Ready Done Not New
        Interested Available Excited Looking Trying Going Writing Working Still Just Also So Very Really
        Currently Always Never Now Afraid Unable Able Confused Stuck Lost Tired Hungry Aware Pleased Delighted
        Thrilled Honored Honoured Grateful Thankful Right Wrong Free Busy Late Sick Alone Home Certain Curious
        Worried Concerned Unsure Positive Confident Planning Using Building Learning Studying Having Getting
        Reaching Following Replying Contacting Attaching Sending Senior Junior Lead Chief Head Principal
        Certified Licensed Retired Former In On At From With About Of For To By As If Or And But Because When
        Where What Who How Why Which Doing Feeling Being Python Java JavaScript TypeScript Rust Go Golang Ruby
        Swift Kotlin Scala Haskell Perl PHP SQL Linux Windows Mac Android Excel Word Google Microsoft Apple
        Amazon AI ChatGPT GPT Assistant Bot English Spanish French German Italian Dutch Portuguese Chinese
        Japanese Korean Russian Arabic Hindi Polish American British Canadian Mexican Brazilian Australian
        Indian European Asian African Latino Latina Irish Scottish Welsh Swiss Austrian Belgian Swedish
        Norwegian Danish Finnish Greek Turkish Catholic Christian Muslim Jewish Hindu Buddhist Atheist Vegan
        Vegetarian Doctor Engineer Developer Programmer Teacher Nurse Lawyer Designer Director Professor CEO CTO
        CFO COO Founder Cofounder Scientist Researcher Analyst Consultant Writer Author Intern Volunteer Officer
        Agent Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow Yesterday
    """,
    "es": """
        Señor Señora Señores Señoras Cliente Clientes Amigo Amigos Amiga Amigas Todos Todas Equipo Compañeros
        Compañero Usuario Usuarios Colega Colegas Familia Mundo Hola Gracias Buenos Buenas Estimado Estimada
        Feliz Contento Contenta Estudiante Profesor Profesora Ingeniero Ingeniera Médico Médica Español Española
    """,
    "fr": """
        Monde Tous Toutes Équipe Ami Amis Amie Amies Collègue Collègues Madame Monsieur Mesdames Messieurs
        Mesdemoiselles Bonjour Merci Heureux Heureuse Content Contente Désolé Désolée Étudiant Étudiante
        Ingénieur Français Française Client Clients Cliente
    """,
    "de": """
        Damen Herren Kunde Kundin Kunden Kollege Kollegin Kollegen Kolleginnen Alle Zusammen Welt Freunde Leute
        Team Grüße Grüsse Gruß Eltern Kinder Mitglieder Nachbarn Studierende Teilnehmer Teilnehmerinnen Hallo
        Danke Student Studentin Lehrer Lehrerin Entwickler Entwicklerin Deutscher Deutsche Sehr Geehrte Geehrter
    """,
    "it": """
        Signore Signora Signori Signorine Tutti Tutte Colleghi Amici Amiche Mondo Ciao Grazie Cliente Clienti
        Felice Studente Studentessa Italiano Italiana
    """,
    "nl": """
        Klant Klanten Heer Mevrouw Allen Iedereen Collega Collegas Wereld Vrienden Leden Hoi Bedankt Wensen
        Nederlander
    """,
    "pt": """
        Senhor Senhora Senhores Equipe Todos Mundo Olá Obrigado Obrigada Prezado Prezada Brasileiro Brasileira
        Português Portuguesa Estudante Cliente Clientes
    """,
}
NOT_NAMES = frozenset(word for words in NOT_NAMES_BY_LANGUAGE.values() for word in words.split())


def find_names(text: str) -> Iterator[Span]:
    """PERSON spans after a cue: introductions, greetings, labels, titles and signature closings."""
    found: dict[tuple[int, int], float] = {}
    low = text.lower()
    starts = [0, *(m.end() for m in SENTENCE_START.finditer(text))]
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    for regex, follow, score, caps in (
        (STRONG_CUE, None, 0.85, False),
        (WEAK_CUE, WEAK_FOLLOW, 0.7, False),
        (FORMAL_GREETING, None, 0.85, False),
        (INFORMAL_GREETING, END_OF_ADDRESS, 0.8, False),
        (LABEL, END_OF_LINE, 0.85, True),
        (TITLE_CUE, None, 0.85, False),
        (CLOSING, END_OF_LINE, 0.8, False),
        (DASH, END_OF_LINE, 0.75, False),
    ):
        if regex is STRONG_CUE and not any(w in low for w in STRONG_WORDS):
            continue
        if regex is WEAK_CUE and not any(w in low for w in WEAK_WORDS):
            continue
        if regex in (FORMAL_GREETING, INFORMAL_GREETING, CLOSING, DASH):
            at = line_starts if regex is DASH else starts
            cues: Iterable[re.Match[str] | None] = (regex.match(text, pos) for pos in at)
        else:
            cues = regex.finditer(text)
        for m in cues:
            if m is None:
                continue
            name = _name_at(text, m.end(), caps=caps, titled=regex is TITLE_CUE)
            if name is not None and (follow is None or follow.match(text, name[1])):
                found[name] = max(found.get(name, 0.0), score)
    for span in find_context_names(text, lambda t, p: _name_at(t, p, caps=False, titled=False)):
        found[(span.start, span.end)] = max(found.get((span.start, span.end), 0.0), span.score)
    for span in find_field_names(text):
        if span.text in NOT_NAMES:
            continue  # name="Orders" is no person
        found[(span.start, span.end)] = max(found.get((span.start, span.end), 0.0), span.score)
    for (start, end), score in sorted(found.items()):
        yield span_at(text, start, end, "PERSON", score=score)


def _name_at(text: str, pos: int, *, caps: bool, titled: bool) -> tuple[int, int] | None:
    """The extent of the name starting at `pos` (after up to two titles), or None when none starts there."""
    for _ in range(2):
        title = TITLES.match(text, pos)
        if title is None or title.end() == pos:
            break
        pos, titled = title.end(), True
    if titled and (particle := PARTICLES.match(text, pos)) and TOKEN.match(text, particle.end()):
        pos_first = pos  # "Herr von Weizsäcker", "Sr. de la Fuente": the particle belongs to the name
        pos = particle.end()
    else:
        pos_first = None
    first = _token(text, pos, caps)
    if first is None or first.group().endswith("."):
        return None
    start, end, count = pos_first if pos_first is not None else first.start(), first.end(), 1
    while count < 5:
        gap = SPACE.match(text, end)
        if gap is None:
            break
        at = gap.end()
        particle = PARTICLES.match(text, at)
        nxt = _token(text, particle.end() if particle else at, caps)
        if nxt is None:
            break
        end, count = nxt.end(), count + 1
    if text[end - 1] == ".":  # a trailing initial is the end of a sentence, not of a name
        end = text.rfind(" ", start, end) if text.rfind(" ", start, end) > start else end
    return start, end


def _token(text: str, pos: int, caps: bool) -> re.Match[str] | None:
    m = TOKEN.match(text, pos) or (CAPS_TOKEN.match(text, pos) if caps else None)
    if m is None or m.group().rstrip(".").capitalize() in NOT_NAMES or m.group() in NOT_NAMES:
        return None
    return m
