"""The sentence templates of the multinational PII benchmark (bench/pii_world.py), and their dev/held-out split.

`{{slot}}` is a value pii_world generates (`{{slot|json}}`, `|py`, `|url`, `|plain`, `|sh` escape or restrict
it as the surrounding format needs); `{{id_cue}}` and `{{mrn_cue}}` are the locale's words for the national
ID and the medical number chosen for the sample. `langs` names the languages a template is written in
(`*`: language-neutral code and config, filled for every locale).

About 30% of the templates, fixed by a hash of their id (`is_held_out`), are held out: the authors of the
finders under test did not see them and no rule may be tuned on them. Do not quote them in issues or to
the finders' authors; fit on the development share only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

STYLES: tuple[str, ...] = ("chat", "email", "form", "json", "yaml", "log", "code")
HELD_OUT_SHARE = 0.3
SPLIT_SALT = "tandem-world-split-v184"  # chosen (before any detector ran) so every style has 2+ held-out
# templates and every kind of value in every locale occurs in both shares


@dataclass(frozen=True)
class Template:
    id: str
    style: str
    langs: tuple[str, ...]
    text: str
    fresh: bool = False  # from pii_world_fresh: a third split, held out too, written after the finders were

    @property
    def held_out(self) -> bool:
        return self.fresh or is_held_out(self.id)

    @property
    def split(self) -> str:
        """`dev`, `held_out` (by the hash) or `fresh`."""
        return "fresh" if self.fresh else "held_out" if self.held_out else "dev"


def is_held_out(template_id: str) -> bool:
    """Whether a template is in the held-out share: fixed by a hash of its id, whatever other templates exist."""
    digest = hashlib.sha256(f"{SPLIT_SALT}/{template_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < HELD_OUT_SHARE * 2**32


_EN = [
    ("chat", "hey, it's {{first}} again. can you update my file? new number is {{phone}} and my {{id_cue}} is "
             "{{national_id}}"),
    ("chat", "Can you help me fill out this visa form? My name is {{name}}, passport number {{passport}}, and I live "
             "at {{address}}."),
    ("chat", "my kid's student ID is {{student_id}}, the school keeps asking for it lol. also my cell is {{phone}}"),
    ("chat", "I need to set up a direct debit for 45.00 a month. My details: {{bank}}. Name on the account: {{name}}."),
    ("chat", "Patient {{name}}, {{mrn_cue}} {{mrn}}, came in with chest pain on Tuesday. Summarise the triage note "
             "for me."),
    ("chat", "Why does my code fail? I set password = {{password|plain}} in settings.py but the login still returns "
             "401"),
    ("chat", "Rewrite this politely: '{{name}}, your membership {{member_id}} has lapsed, call us on {{phone}}.'"),
    ("chat", "Translate to French: Employee {{employee_id}} ({{name}}) is on leave until the 14th."),
    ("chat", "is it safe to give my {{id_cue}} ({{national_id}}) to a landlord? he also wants my bank account "
             "{{account}}"),
    ("chat", "ok so the wifi password is {{password|plain}} and the alarm code is 4471, {{first}} will be there at 6"),
    ("email", "Subject: Change of address\n\nDear Sir or Madam,\n\nPlease note my new address: {{address}}. My "
              "{{id_cue}} is {{national_id}}.\n\nKind regards,\n{{name}}\n{{phone}}"),
    ("email", "Hi team,\n\nForwarding the onboarding pack for {{name}} (employee no. {{employee_id}}). Payroll needs "
              "{{bank}} by Friday.\n\nThanks,\n{{name2}}"),
    ("email", "Dear Dr {{last}},\n\nRe: {{name2}}, {{mrn_cue}} {{mrn}}. Referral attached; please call me on "
              "{{phone}} with any questions.\n\nBest wishes,\n{{name}}"),
    ("email", "From: {{email}}\nTo: {{office_email}}\n\nHello, I'm applying again. My previous student number "
              "was {{student_id}} and my passport is {{passport}}.\n\n{{name}}"),
    ("email", "Hi {{first}},\n\nThe staging DB creds are user {{user}} / password {{password|plain}}. Please rotate "
              "them after the demo.\n\n{{name2}}"),
    ("email", "Hello {{first}}, thanks for renewing! Your membership number is {{member_id}}. We'll post the card "
              "to {{address}}.\n-- The Members Team"),
    ("form", "Full name: {{name}}\nAddress: {{address}}\nPhone: {{phone}}\n{{id_cue}}: {{national_id}}"),
    ("form", "APPLICANT\nName ........ {{name}}\nPassport No. {{passport}}\nEmail ....... {{email}}"),
    ("form", "Member: {{name}} | Membership #: {{member_id}} | Tel: {{phone}}"),
    ("form", "Patient name: {{name}}; {{mrn_cue}}: {{mrn}}; Next of kin: {{name2}}, {{phone}}"),
    ("form", "Employee ID | Name | Bank details\n{{employee_id}} | {{name}} | {{bank}}"),
    ("chat", "booking for {{name}}, passport {{passport}}, I'll be reachable on {{phone}} while travelling"),
    ("form", "STAFF RECORD\nSurname, first name: {{last}}, {{first}}\nStaff no.: {{employee_id}}\n{{id_cue}}: "
             "{{national_id}}\nHome address: {{address}}"),
    ("email", "Hi {{first}},\n\nMember {{name2}} (no. {{member_id}}) has moved to {{address}}; please update the "
              "mailing list.\n\nCheers,\n{{name}}"),
    ("log", 'INFO crm.update member={{member_id}} student={{student_id}} addr="{{address}}" ok'),
]  # fmt: skip
_ES = [
    ("chat", "hola, soy {{first}}. Necesito cambiar el teléfono de contacto al {{phone}}, mi {{id_cue}} es "
             "{{national_id}}"),
    ("chat", "¿Me ayudas a rellenar la solicitud? Me llamo {{name}}, número de pasaporte {{passport}}, domicilio "
             "en {{address}}."),
    ("chat", "Te paso los datos para la domiciliación: {{bank}}. El titular es {{name}}."),
    ("chat", "Resume la nota de urgencias de {{name}} (número de historia clínica {{mrn}}), ingresó anoche."),
    ("chat", "la contraseña del router es {{password|plain}}, no se la digas a nadie jaja"),
    ("email", "Asunto: Cambio de domicilio\n\nEstimados señores:\n\nLes comunico mi nueva dirección: {{address}}. "
              "Mi {{id_cue}} es {{national_id}}.\n\nAtentamente,\n{{name}}\nTel. {{phone}}"),
    ("email", "Hola {{first}}:\n\nTe reenvío la ficha de {{name2}}, número de empleado {{employee_id}}, para "
              "nóminas. Su número de cuenta es {{account}}.\n\nUn saludo,\n{{name}}"),
    ("email", "Buenos días:\n\nSoy socio del club con el número de socio {{member_id}}. Mi hijo, con número de "
              "matrícula {{student_id}}, quiere apuntarse. Podéis llamarme al {{phone}}.\n\n{{name}}"),
    ("form", "Nombre y apellidos: {{name}}\n{{id_cue}}: {{national_id}}\nDirección: {{address}}\nTeléfono: "
             "{{phone}}"),
    ("form", "Paciente: {{name}} | Nº historia clínica: {{mrn}} | Correo: {{email}}"),
    ("log", "2024-03-11 09:14:22 ERROR alta_cliente: documento duplicado {{national_id}} para {{name}}"),
    ("json", '{"nombre": "{{name|json}}", "telefono": "{{phone}}", "contraseña": "{{password|json}}"}'),
    ("chat", "oye, para el seguro me piden el pasaporte: el mío es {{passport}} y vivo en {{address}}. Soy {{name}}."),
    ("form", "SOLICITUD DE ALTA\nApellidos y nombre: {{last}}, {{first}}\n{{id_cue}}: {{national_id}}\nNº empleado: "
             "{{employee_id}}\nTeléfono móvil: {{phone}}"),
    ("email", "Hola:\n\nOs escribo desde el club. El socio {{name2}} (n.º {{member_id}}) se ha mudado a {{address}}; "
              "su nuevo móvil es el {{phone}}.\n\nGracias,\n{{name}}"),
    ("log", 'WARN pasaportes: verificación manual pasaporte={{passport}} titular="{{name}}" oficina=Madrid'),
]  # fmt: skip
_FR = [
    ("chat", "salut c'est {{first}}, mon nouveau numéro c'est le {{phone}}, et mon numéro de sécu {{national_id}} "
             "si besoin"),
    ("chat", "Tu peux m'aider à remplir le formulaire ? Je m'appelle {{name}}, numéro de passeport {{passport}}, "
             "j'habite {{address}}."),
    ("chat", "Voici mon RIB pour le prélèvement : {{bank}}. Titulaire : {{name}}."),
    ("chat", "Résume le compte rendu de {{name}}, dossier patient n° {{mrn}}, hospitalisé depuis lundi."),
    ("chat", "le mot de passe du wifi c'est {{password|plain}} je crois"),
    ("email", "Objet : Changement d'adresse\n\nMadame, Monsieur,\n\nVeuillez noter ma nouvelle adresse : "
              "{{address}}. Mon numéro de sécurité sociale est le {{national_id}}.\n\nCordialement,\n{{name}}\n"
              "{{phone}}"),
    ("email", "Bonjour {{first}},\n\nJe te transmets le dossier de {{name2}} (matricule {{employee_id}}) pour la "
              "paie. Ses coordonnées bancaires : {{account}}.\n\nBien à toi,\n{{name}}"),
    ("email", "Bonjour,\n\nJe suis adhérent sous le numéro {{member_id}} et mon fils, numéro étudiant "
              "{{student_id}}, souhaite s'inscrire. Vous pouvez me joindre au {{phone}}.\n\n{{name}}"),
    ("form", "Nom : {{name}}\nN° de sécurité sociale : {{national_id}}\nAdresse : {{address}}\nTél. : {{phone}}"),
    ("form", "Patient : {{name}} ; IPP : {{mrn}} ; e-mail : {{email}}"),
    ("log", "2024-03-11 09:14:22 ERREUR inscription : NIR {{national_id}} déjà utilisé pour {{name}}"),
    ("json", '{"nom": "{{name|json}}", "telephone": "{{phone}}", "mot_de_passe": "{{password|json}}"}'),
    ("chat", "bonjour, je voudrais réserver au nom de {{name}}, passeport n° {{passport}}, joignable au {{phone}}"),
    ("form", "FICHE SALARIÉ\nNom, prénom : {{last}} {{first}}\nMatricule : {{employee_id}}\nN° INSEE : "
             "{{national_id}}\nDomicile : {{address}}"),
    ("email", "Bonjour {{first}},\n\nl'adhérent {{name2}} (carte n° {{member_id}}) nous signale sa nouvelle adresse : "
              "{{address}}.\n\nMerci,\n{{name}}"),
    ("log", '2024-03-11 09:14:22 INFO paie.export salarie={{employee_id}} nom="{{name}}" rib={{account}}'),
]  # fmt: skip
_DE = [
    ("chat", "Hi, hier ist {{first}}. Meine neue Handynummer ist {{phone}}, meine Steuer-ID {{national_id}}."),
    ("chat", "Kannst du mir beim Antrag helfen? Ich heiße {{name}}, Reisepassnummer {{passport}}, wohnhaft "
             "{{address}}."),
    ("chat", "Für die Lastschrift: {{bank}}, Kontoinhaber {{name}}."),
    ("chat", "Fass bitte den Arztbrief für {{name}} zusammen, {{mrn_cue}} {{mrn}}, Aufnahme gestern Abend."),
    ("chat", "das WLAN-Passwort ist {{password|plain}}, sag's nicht weiter"),
    ("email", "Betreff: Adressänderung\n\nSehr geehrte Damen und Herren,\n\nbitte notieren Sie meine neue "
              "Anschrift: {{address}}. Meine Steueridentifikationsnummer lautet {{national_id}}.\n\nMit "
              "freundlichen Grüßen\n{{name}}\nTel.: {{phone}}"),
    ("email", "Hallo {{first}},\n\nanbei die Unterlagen von {{name2}} (Personalnummer {{employee_id}}) für die "
              "Lohnabrechnung. Kontonummer: {{account}}.\n\nViele Grüße\n{{name}}"),
    ("email", "Guten Tag,\n\nich bin Mitglied mit der Mitgliedsnummer {{member_id}}; meine Tochter (Matrikelnummer "
              "{{student_id}}) möchte auch beitreten. Erreichbar unter {{phone}}.\n\n{{name}}"),
    ("form", "Name: {{name}}\nSteuer-ID: {{national_id}}\nAnschrift: {{address}}\nTelefon: {{phone}}"),
    ("form", "Patient: {{name}} | {{mrn_cue}}: {{mrn}} | E-Mail: {{email}}"),
    ("log", "2024-03-11 09:14:22 FEHLER Kundenanlage: IdNr {{national_id}} bereits vergeben ({{name}})"),
    ("yaml", "datenbank:\n  server: {{host}}\n  benutzer: {{user}}\n  passwort: \"{{password|json}}\""),
    ("chat", "Hallo, ich möchte einen Termin für {{name}} buchen, Passnummer {{passport}}, Rückruf unter {{phone}}."),
    ("form", "PERSONALBOGEN\nNachname, Vorname: {{last}}, {{first}}\nPersonalnummer: {{employee_id}}\nSteuerliche "
             "Identifikationsnummer: {{national_id}}\nWohnort: {{address}}"),
    ("email", "Hallo {{first}},\n\nunser Mitglied {{name2}} (Nr. {{member_id}}) ist umgezogen: {{address}}.\n\nGruß\n"
              "{{name}}"),
    ("json", '{"vorname": "{{first|json}}", "nachname": "{{last|json}}", "reisepass": "{{passport}}", '
             '"handy": "{{phone}}"}'),
]  # fmt: skip
_IT = [
    ("chat", "ciao sono {{first}}, il mio nuovo cellulare è {{phone}} e il codice fiscale {{national_id}}"),
    ("chat", "Mi aiuti con il modulo? Mi chiamo {{name}}, numero di passaporto {{passport}}, residente in "
             "{{address}}."),
    ("chat", "Per l'addebito: {{bank}}, intestato a {{name}}."),
    ("chat", "Riassumi la lettera di dimissione di {{name}}, cartella clinica n. {{mrn}}."),
    ("chat", "la password del wifi è {{password|plain}}, non dirla a nessuno"),
    ("email", "Oggetto: Cambio di indirizzo\n\nGentili signori,\n\nvi comunico il mio nuovo indirizzo: "
              "{{address}}. Il mio codice fiscale è {{national_id}}.\n\nCordiali saluti,\n{{name}}\nTel. {{phone}}"),
    ("email", "Ciao {{first}},\n\nti giro la scheda di {{name2}} (matricola dipendente {{employee_id}}) per le "
              "buste paga. Conto corrente: {{account}}.\n\nA presto,\n{{name}}"),
    ("email", "Buongiorno,\n\nsono socio con tessera n. {{member_id}}; mio figlio (matricola universitaria "
              "{{student_id}}) vorrebbe iscriversi. Potete chiamarmi al {{phone}}.\n\n{{name}}"),
    ("form", "Nome e cognome: {{name}}\nCodice fiscale: {{national_id}}\nIndirizzo: {{address}}\nTelefono: "
             "{{phone}}"),
    ("form", "Paziente: {{name}} | N. cartella: {{mrn}} | Email: {{email}}"),
    ("log", "2024-03-11 09:14:22 ERRORE anagrafica: CF {{national_id}} già presente per {{name}}"),
    ("json", '{"nome": "{{name|json}}", "cellulare": "{{phone}}", "password": "{{password|json}}"}'),
    ("chat", "buongiorno, vorrei prenotare a nome di {{name}}, passaporto {{passport}}, il mio numero è {{phone}}"),
    ("form", "SCHEDA DIPENDENTE\nCognome e nome: {{last}} {{first}}\nMatricola: {{employee_id}}\nC.F.: "
             "{{national_id}}\nResidenza: {{address}}"),
    ("email", "Ciao {{first}},\n\nil socio {{name2}} (tessera {{member_id}}) si è trasferito in {{address}}.\n\n"
              "Grazie,\n{{name}}"),
    ("log", '2024-03-11 09:14:22 WARN passaporti: verifica manuale passaporto={{passport}} titolare="{{name}}"'),
]  # fmt: skip
_NL = [
    ("chat", "hoi, met {{first}}. mijn nieuwe nummer is {{phone}} en mijn BSN is {{national_id}}"),
    ("chat", "Kun je me helpen met het formulier? Ik heet {{name}}, paspoortnummer {{passport}}, woonachtig op "
             "{{address}}."),
    ("chat", "Voor de incasso: rekeningnummer {{bank}}, ten name van {{name}}."),
    ("chat", "Vat de ontslagbrief samen van {{name}}, patiëntnummer {{mrn}}."),
    ("chat", "het wifi-wachtwoord is {{password|plain}}, niet doorvertellen"),
    ("email", "Onderwerp: Adreswijziging\n\nGeachte heer/mevrouw,\n\nMijn nieuwe adres is: {{address}}. Mijn "
              "burgerservicenummer is {{national_id}}.\n\nMet vriendelijke groet,\n{{name}}\nTel. {{phone}}"),
    ("email", "Hoi {{first}},\n\nHierbij het dossier van {{name2}} (personeelsnummer {{employee_id}}) voor de "
              "salarisadministratie. Rekeningnummer: {{account}}.\n\nGroet,\n{{name}}"),
    ("email", "Goedemiddag,\n\nIk ben lid met lidnummer {{member_id}}; mijn dochter (studentnummer {{student_id}}) "
              "wil ook lid worden. Bel me gerust op {{phone}}.\n\n{{name}}"),
    ("form", "Naam: {{name}}\nBSN: {{national_id}}\nAdres: {{address}}\nTelefoon: {{phone}}"),
    ("form", "Patiënt: {{name}} | Patiëntnummer: {{mrn}} | E-mail: {{email}}"),
    ("log", "2024-03-11 09:14:22 FOUT klantregistratie: BSN {{national_id}} al in gebruik ({{name}})"),
    ("yaml", "database:\n  host: {{host}}\n  gebruiker: {{user}}\n  wachtwoord: {{password|plain}}"),
    ("chat", "hallo, ik wil graag reserveren op naam van {{name}}, paspoort {{passport}}, bereikbaar op {{phone}}"),
    ("form", "PERSONEELSFORMULIER\nAchternaam, voornaam: {{last}}, {{first}}\nPersoneelsnummer: {{employee_id}}\n"
             "Burgerservicenummer: {{national_id}}\nWoonadres: {{address}}"),
    ("email", "Hoi {{first}},\n\nons lid {{name2}} (lidnummer {{member_id}}) is verhuisd naar {{address}}.\n\n"
              "Groet,\n{{name}}"),
    ("json", '{"naam": "{{name|json}}", "bsn": "{{national_id}}", "paspoort": "{{passport}}", "mobiel": "{{phone}}"}'),
]  # fmt: skip
_PT = [
    ("chat", "olá, é o {{first}}. o meu novo telemóvel é {{phone}} e o NIF {{national_id}}"),
    ("chat", "Podes ajudar-me com o formulário? Chamo-me {{name}}, número do passaporte {{passport}}, moro na "
             "{{address}}."),
    ("chat", "Para o débito direto: {{bank}}, titular {{name}}."),
    ("chat", "Resume a nota de alta de {{name}}, {{mrn_cue}} {{mrn}}."),
    ("chat", "a palavra-passe do wifi é {{password|plain}}, não digas a ninguém"),
    ("email", "Assunto: Alteração de morada\n\nExmos. Senhores,\n\nInformo a minha nova morada: {{address}}. O meu "
              "número de contribuinte é {{national_id}}.\n\nCom os melhores cumprimentos,\n{{name}}\nTel. {{phone}}"),
    ("email", "Olá {{first}},\n\nsegue a ficha de {{name2}} (número de funcionário {{employee_id}}) para o "
              "processamento salarial. NIB: {{account}}.\n\nAbraço,\n{{name}}"),
    ("email", "Boa tarde,\n\nsou sócio n.º {{member_id}}; o meu filho (número de aluno {{student_id}}) quer "
              "inscrever-se. Podem ligar-me para o {{phone}}.\n\n{{name}}"),
    ("form", "Nome: {{name}}\nNIF: {{national_id}}\nMorada: {{address}}\nTelefone: {{phone}}"),
    ("form", "Utente: {{name}} | {{mrn_cue}}: {{mrn}} | Email: {{email}}"),
    ("log", "2024-03-11 09:14:22 ERRO registo_cliente: NIF {{national_id}} já registado ({{name}})"),
    ("json", '{"nome": "{{name|json}}", "telemovel": "{{phone}}", "palavra_passe": "{{password|json}}"}'),
    ("chat", "bom dia, queria reservar em nome de {{name}}, passaporte {{passport}}, contacto {{phone}}"),
    ("form", "FICHA DE FUNCIONÁRIO\nApelido, nome: {{last}}, {{first}}\nN.º mecanográfico: {{employee_id}}\n"
             "N.º de identificação fiscal: {{national_id}}\nResidência: {{address}}"),
    ("email", "Olá {{first}},\n\no sócio {{name2}} (n.º {{member_id}}) mudou-se para {{address}}.\n\nObrigado,\n"
              "{{name}}"),
    ("log", '2024-03-11 09:14:22 INFO rh.export funcionario={{employee_id}} nome="{{name}}" nib={{account}}'),
]  # fmt: skip
_ANY = [
    ("json", '{"user": {"name": "{{name|json}}", "phone": "{{phone}}", "address": "{{address|json}}"}, '
             '"db_password": "{{password|json}}"}'),
    ("json", '{\n  "employee_id": "{{employee_id}}",\n  "full_name": "{{name|json}}",\n  "passport_no": '
             '"{{passport}}",\n  "national_id": "{{national_id}}"\n}'),
    ("json", '{"service": "billing", "api_key": "{{api_key}}", "timeout": 30, "retries": 3}'),
    ("json", '{"patient": {"mrn": "{{mrn}}", "name": "{{name|json}}"}, "bank": {"account": "{{account}}"}}'),
    ("json", '{"mongo_uri": "mongodb://{{user}}:{{password|url}}@{{host}}:27017/app?authSource=admin", "pool": 10}'),
    ("json", '{"student": {"id": "{{student_id}}", "email": "{{email}}", "guardian_phone": "{{phone}}"}}'),
    ("yaml", "database:\n  host: {{host}}\n  port: 5432\n  user: {{user}}\n  password: \"{{password|json}}\""),
    ("yaml", "smtp:\n  username: {{email}}\n  password: {{password|plain}}\n  port: 587"),
    ("yaml", "contact:\n  name: {{name}}\n  phone: \"{{phone}}\"\n  address: \"{{address|json}}\""),
    ("yaml", "github:\n  token: {{api_key}}\nsession:\n  secret: {{token}}"),
    ("yaml", "members:\n  - id: {{member_id}}\n    name: {{name}}\n    tel: '{{phone}}'"),
    ("log", "2024-03-11T09:14:22Z INFO auth: login ok user={{email}} ip={{ip}} session={{token}}"),
    ("log", "[2024-03-11 09:14:22,481] WARN payroll.export employee={{employee_id}} name=\"{{name}}\" "
            "account={{account}} status=PENDING"),
    ("log", "Mar 11 09:14:22 web-1 app[2211]: POST /api/v1/patients mrn={{mrn}} 201 12ms"),
    ("log", "ERROR kyc.verify: document mismatch for {{name}} (id={{national_id}}, passport={{passport}}) retry=2"),
    ("log", "DEBUG http: GET https://{{user}}:{{password|url}}@{{host}}/export.csv -> 200 (3.1 kB)"),
    ("log", 'level=info msg="sms sent" to={{phone}} template=otp latency_ms=84'),
    ("code", 'import psycopg2\n\nconn = psycopg2.connect(host="{{host}}", user="{{user}}", '
             'password="{{password|py}}", dbname="orders")'),
    ("code", 'client = Client(api_key="{{api_key}}")  # TODO move to env\n'
             'resp = client.get("/v1/customers", params={"limit": 10})'),
    ("code", 'headers = {"Authorization": "Bearer {{bearer}}", "Content-Type": "application/json"}\n'
             "requests.post(url, headers=headers, json=payload, timeout=10)"),
    ("code", "curl -s -H 'Authorization: Basic {{basic}}' https://{{host}}/api/reports?page=2"),
    ("code", "export DATABASE_URL=postgres://{{user}}:{{password|url}}@{{host}}:5432/prod\nexport PGSSLMODE=require"),
    ("code", "APP_ENV=production\nSTRIPE_SECRET_KEY={{api_key}}\nREDIS_PASSWORD={{password|plain}}\nLOG_LEVEL=debug"),
    ("code", 'var cs = "Server={{host}};Database=Sales;User Id={{user}};Password={{password|py}};";'),
    ("code", 'def test_export():\n    customer = Customer(name="{{name|py}}", phone="{{phone}}", '
             'tax_id="{{national_id}}")\n    assert export(customer).ok'),
    ("code", "mysql -h {{host}} -u {{user}} -p'{{password|sh}}' billing < dump.sql"),
    ("code", 'AWS_ACCESS_KEY_ID = "{{aws_key_id}}"\nAWS_SECRET_ACCESS_KEY = "{{aws_secret}}"\n'
             's3 = boto3.client("s3", region_name="eu-west-1")'),
    ("json", '{"employee": {"id": "{{employee_id}}", "home_address": "{{address|json}}", '
             '"emergency_contact": "{{name2|json}}"}}'),
    ("yaml", "student:\n  number: {{student_id}}\n  guardian: {{name2}}\n  guardian_phone: \"{{phone}}\""),
    ("code", 'send_sms(to="{{phone}}", body=f"Hi {{first|py}}, your code is {code}")'),
    ("log", "WARN payments: bank details changed for member {{member_id}}: {{bank}}"),
    ("code", "INSERT INTO patients (mrn, full_name, passport) VALUES ('{{mrn}}', '{{name|sql}}', '{{passport}}');"),
]  # fmt: skip


def numbered(lang: str, rows: list[tuple[str, str]], *, fresh: bool = False) -> list[Template]:
    """Templates of one language ("any": every locale's), their ids numbered per style (`fresh.` first if fresh)."""
    seen: dict[str, int] = {}
    out = []
    for style, text in rows:
        seen[style] = seen.get(style, 0) + 1
        tid = f"{'fresh.' if fresh else ''}{lang}.{style}.{seen[style]}"
        out.append(Template(tid, style, (lang,) if lang != "any" else ("*",), text, fresh=fresh))
    return out


_BY_LANGUAGE = {"en": _EN, "es": _ES, "fr": _FR, "de": _DE, "it": _IT, "nl": _NL, "pt": _PT, "any": _ANY}
TEMPLATES: tuple[Template, ...] = tuple(t for lang, rows in _BY_LANGUAGE.items() for t in numbered(lang, rows))
