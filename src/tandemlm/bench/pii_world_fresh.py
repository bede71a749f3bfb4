"""The FRESH templates of the multinational PII benchmark: a third split, written after the finders were.

The hash-held-out share of pii_world_templates has been looked at by the finders' authors for a while, so it is
no longer a clean test. These templates were written without reading the finders (privacy/) or their tests and
without running them, the way people write in each country: chat messages, e-mails and support tickets,
web-form dumps and CSV rows (style `form`), JSON and YAML config, log lines, and code (Python, JS, shell, SQL,
curl, .env, TOML, INI), in English and in the locales' own languages, with some values under a bare form label
or JSON key and no cue word at all. They are never in the development share (`Template.fresh`; samples from
them are `held_out` too, so code that keeps to `not held_out` never fits on them) and the report scores them
apart, as `fresh`.

Do not quote them in issues or to the finders' authors, and tune nothing on them: once they have been looked
at, write a new set.
"""

from __future__ import annotations

from tandemlm.bench.pii_world_templates import Template, numbered

_EN = [
    ("chat", "hi, {{first}} here 👋 moved last week, new address is {{address}}. can you also swap the number on "
             "file to {{phone}}? thx"),
    ("chat", "the portal keeps rejecting my {{id_cue}}, I'm typing {{national_id}} exactly like that. is the "
             "format wrong or is it me"),
    ("chat", "I'm doing the hospital's online form for my dad, {{name}}. It asks for his {{mrn_cue}} and the "
             "letter says {{mrn}}. Which box does that go in?"),
    ("chat", "can u write a short note to my landlord saying rent now comes from a different account: {{bank}}. "
             "sign it {{name}}"),
    ("chat", "Draft a reply to {{name2}} telling them their student number {{student_id}} was merged with the old "
             "one and they should log in as {{email}} from now on"),
    ("chat", "quick q, my passport ({{passport}}) expires in 5 months, can I still fly to Bali? booking is under "
             "{{first}} {{last}}"),
    ("chat", "what's wrong with this? `git clone https://{{user}}:{{password|url}}@{{host}}/team/app.git` just "
             "says authentication failed"),
    ("chat", "ok here's my .env, can you see why stripe keeps failing?\nSTRIPE_KEY={{api_key}}\n"
             "APP_URL=http://localhost:3000\nDEBUG=1"),
    ("email", "Ticket #48213: Cannot access account\nFrom: {{name}} <{{email}}>\nPriority: High\n\nHi support,\n\n"
              "I've been locked out since yesterday. My member ID is {{member_id}} and the phone on the account is "
              "{{phone}}. Please call me back.\n\n{{first}}"),
    ("email", "Hi all,\n\nBefore payroll closes: {{name2}} (staff ID {{employee_id}}) has switched banks. "
              "Please update the payee details to {{bank}}.\n\nCheers\n{{first}} {{last}} | HR Operations"),
    ("email", "To whom it may concern,\n\nI confirm that {{name2}} has been a patient at this practice since 2015 "
              "(record no. {{mrn}}).\n\nYours faithfully,\n{{name}}\n{{address}}"),
    ("email", "Subject: Re: your application\n\nThanks {{first}}! We've got your documents. For our records: "
              "passport {{passport}}, {{id_cue}} {{national_id}}. If anything changes just reply here or ring "
              "{{phone}}.\n\nAdmissions Office"),
    ("form", "first_name={{first}}\nlast_name={{last}}\nemail={{email}}\nphone={{phone}}\n"
             "street_address={{address|json}}\nconsent=on"),
    ("form", "employee_id,first_name,last_name,email,mobile\n{{employee_id}},{{first}},{{last}},{{email}},"
             "{{phone}}"),
    ("form", "EMERGENCY CONTACT FORM\n\nStudent: {{name}}\nStudent no: {{student_id}}\nParent/guardian: {{name2}}\n"
             "Best number to reach: {{phone}}\nHome address:\n{{address}}"),
    ("form", "Claim form, section B\nPolicy holder ........ {{name}}\nMembership no. ...... {{member_id}}\n"
             "{{id_cue}} ...... {{national_id}}"),
    ("log", '2025-06-02 14:03:11,912 INFO  [billing] refund issued customer="{{name}}" email={{email}} '
            "acct={{account}} amount=42.10"),
]  # fmt: skip
_ES = [
    ("chat", "buenas, no me llega el SMS de verificación al {{phone}}. Mi DNI/NIE es {{national_id}}, a nombre de "
             "{{name}}"),
    ("chat", "¿cómo le escribo a la secretaría? quiero decirles que en el expediente {{student_id}} tienen mal la "
             "dirección, la buena es {{address}}"),
    ("chat", "mi madre, {{name}}, tiene cita en el hospital. En el volante pone NHC {{mrn}}, ¿es eso lo que piden "
             "en la web?"),
    ("email", "Asunto: Incidencia con la factura\n\nHola:\n\nSoy {{name}}, socio n.º {{member_id}}. Me habéis "
              "cobrado dos veces en la cuenta {{account}}. Os dejo mi móvil: {{phone}}.\n\nGracias de antemano"),
    ("email", "Buenas tardes, {{first}}:\n\nAdjunto el contrato de {{name2}}. Para RR. HH.: código de empleado "
              "{{employee_id}}, cuenta para la nómina {{account}}.\n\nSaludos cordiales,\nDpto. de Personal"),
    ("form", "DATOS DEL ALUMNO\nNombre: {{first}}\nApellidos: {{last}}\nNIA: {{student_id}}\nCorreo electrónico: "
             "{{email}}\nDomicilio: {{address}}"),
    ("form", "nombre;apellidos;dni;telefono\n{{first}};{{last}};{{national_id}};{{phone}}"),
    ("log", "[2025-01-20 08:01:55] local.ERROR: No se pudo validar el pasaporte {{passport}} del cliente "
            "{{email}}"),
    ("json", '{"cliente": {"nombre_completo": "{{name|json}}", "nif": "{{national_id}}", "direccion": '
             '"{{address|json}}", "cuenta": "{{account}}"}}'),
    ("code", "UPDATE socios SET telefono = '{{phone}}', email = '{{email}}' WHERE num_socio = '{{member_id}}';"),
    ("yaml", "usuario:\n  nombre: {{name}}\n  pasaporte: {{passport}}\n  contraseña: \"{{password|json}}\""),
]  # fmt: skip
_FR = [
    ("chat", "coucou, tu peux regarder mon dossier ? c'est {{name}}, n° de sécu {{national_id}}"),
    ("chat", "j'ai perdu ma carte d'adhérent, le numéro c'était {{member_id}} je crois. vous pouvez m'en renvoyer "
             "une au {{address}} ?"),
    ("chat", "Comment je formule un mail à la DRH pour changer mon RIB ? Nouveau compte : {{account}}, mon "
             "matricule {{employee_id}}"),
    ("email", "Objet : [Ticket 20931] Connexion impossible\n\nBonjour,\n\nDepuis ce matin je n'arrive plus à me "
              "connecter avec {{email}}. Mon numéro étudiant : {{student_id}}. Vous pouvez m'appeler au "
              "{{phone}}.\n\nMerci d'avance,\n{{name}}"),
    ("email", "Cher confrère,\n\nJe vous adresse {{name2}} (IPP {{mrn}}) pour avis. Vous pouvez me joindre au "
              "{{phone}}.\n\nConfraternellement,\n{{name}}"),
    ("form", "Nom : {{last}}\nPrénom : {{first}}\nN° de passeport : {{passport}}\nCourriel : {{email}}\n"
             "Adresse postale :\n{{address}}"),
    ("log", "2025-02-11T10:22:07+01:00 WARN facturation : prélèvement rejeté pour {{name}} (RIB {{account}}, tél "
            "{{phone}})"),
    ("json", '{"salarie": {"nom": "{{last|json}}", "prenom": "{{first|json}}", "matricule": "{{employee_id}}", '
             '"nir": "{{national_id}}"}}'),
    ("code", "[smtp]\nhote = {{host}}\nutilisateur = {{user}}\nmot_de_passe = {{password|plain}}\n"
             "; ne pas committer ce fichier"),
    ("yaml", "patient:\n  nom: {{name}}\n  dossier: \"{{mrn}}\"\n  telephone: \"{{phone}}\""),
]  # fmt: skip
_DE = [
    ("chat", "Moin! Meine Steuer-ID ist {{national_id}}, der Arbeitgeber will sie aber ohne Leerzeichen. Macht "
             "das einen Unterschied?"),
    ("chat", "hab meine Mitgliedskarte verloren 🙈 Nummer war {{member_id}}, bitte eine neue an {{address}} "
             "schicken. Danke, {{first}}"),
    ("chat", "Kannst du mir eine kurze Mail an die Personalabteilung schreiben? Ich ({{name}}, Pers.-Nr. "
             "{{employee_id}}) habe ein neues Konto: {{bank}}."),
    ("email", "Betreff: [#55120] Beitrag doppelt abgebucht\n\nHallo Support-Team,\n\nmir wurde der Beitrag "
              "zweimal abgebucht, Konto {{account}}. Rückruf bitte unter {{phone}}.\n\nBeste Grüße\n{{name}}"),
    ("email", "Sehr geehrte Kolleginnen und Kollegen,\n\nanbei die Befunde von {{name2}}, {{mrn_cue}} {{mrn}}. "
              "Für Rückfragen bin ich unter {{phone}} erreichbar.\n\nMit kollegialen Grüßen\n{{name}}"),
    ("form", "Anmeldung Sprachkurs\nVorname: {{first}}\nNachname: {{last}}\nMatrikel-Nr.: {{student_id}}\n"
             "E-Mail: {{email}}\nMobil: {{phone}}"),
    ("form", "Reisende/r: {{name}} · Pass-Nr. {{passport}} · Anschrift: {{address}}"),
    ("log", "2025-03-04 17:45:12.004 WARN  [lohn] Bankverbindung geändert: MA {{employee_id}} ({{name}}) "
            "Konto={{account}}"),
    ("code", 'kunde = {"name": "{{name|py}}", "steuer_id": "{{national_id}}", "telefon": "{{phone}}"}\n'
             'versende_brief(kunde, adresse="{{address|py}}")'),
    ("yaml", "smtp:\n  benutzername: {{email}}\n  passwort: '{{password|plain}}'"),
]  # fmt: skip
_IT = [
    ("chat", "ciao! mi dai una mano col modulo dell'università? matricola {{student_id}}, poi mi chiede il CF: "
             "{{national_id}} va bene scritto così?"),
    ("chat", "puoi scrivere due righe all'amministratore? dal mese prossimo l'affitto lo pago da questo conto: "
             "{{bank}}. firmato {{name}}"),
    ("email", "Oggetto: Richiesta assistenza - pratica 7731\n\nSalve,\n\nsono {{name}}, tessera socio "
              "{{member_id}}. Non riesco ad accedere con la mail {{email}}. Il mio recapito è {{phone}}.\n\n"
              "Grazie mille"),
    ("email", "Ciao a tutti,\n\nvi inoltro i dati di {{name2}} per l'ufficio personale: matricola "
              "{{employee_id}}, residenza {{address}}.\n\nUn saluto,\n{{first}}"),
    ("form", "MODULO DI ACCETTAZIONE\nCognome: {{last}}\nNome: {{first}}\nN. cartella clinica: {{mrn}}\nTel.: "
             "{{phone}}"),
    ("log", '2025-04-18 11:09:33 INFO prenotazioni: check-in ok ospite="{{name}}" passaporto={{passport}} '
            "camera=214"),
    ("json", '{"anagrafica": {"codice_fiscale": "{{national_id}}", "nome": "{{first|json}}", "cognome": '
             '"{{last|json}}", "email": "{{email}}"}}'),
    ("code", "# config produzione, NON condividere\nDB_HOST={{host}}\nDB_UTENTE={{user}}\n"
             "DB_PASSWORD={{password|plain}}"),
    ("yaml", "dipendente:\n  nome: {{name}}\n  matricola: \"{{employee_id}}\"\n  conto_corrente: \"{{account}}\""),
]  # fmt: skip
_NL = [
    ("chat", "hoi! ik probeer DigiD aan te vragen maar mijn BSN wordt niet geaccepteerd: {{national_id}}. typ ik "
             "iets verkeerd?"),
    ("chat", "kun je een berichtje voor de verhuurder opstellen? de huur gaat voortaan van rekening {{account}}. "
             "groetjes {{first}}"),
    ("email", "Onderwerp: Storing inloggen (ticket 3391)\n\nBeste klantenservice,\n\nIk kan niet meer inloggen "
              "met {{email}}. Mijn lidnummer is {{member_id}}, telefonisch bereikbaar op {{phone}}.\n\nMet "
              "vriendelijke groet,\n{{name}}"),
    ("email", "Beste {{first}},\n\n{{name2}} begint maandag. Personeelsnr. {{employee_id}}, paspoort {{passport}}. "
              "Wil jij de toegangspas aanvragen?\n\nGroeten,\nteam HR"),
    ("form", "Inschrijfformulier\nVoornaam: {{first}}\nAchternaam: {{last}}\nStudentnummer: {{student_id}}\n"
             "Adres:\n{{address}}"),
    ("log", "2025-05-09 13:37:00 WARN zorgportaal: patiënt {{mrn}} ({{name}}) afspraak verzet, sms naar "
            "{{phone}}"),
    ("json", '{"klant": {"naam": "{{name|json}}", "adres": "{{address|json}}", "rekening": "{{account}}"}}'),
    ("code", "SELECT * FROM leden WHERE lidnummer = '{{member_id}}' OR email = '{{email}}';"),
    ("code", "# .env\nMOLLIE_API_KEY={{api_key}}\nDB_WACHTWOORD={{password|plain}}"),
]  # fmt: skip
_PT = [
    ("chat", "olá! estou a preencher a candidatura e pedem o número de aluno, o meu é {{student_id}}. e o NIF "
             "{{national_id}} ponho sem espaços?"),
    ("chat", "podes escrever um email ao senhorio a dizer que a renda passa a ser paga pela conta {{account}}? "
             "assina {{name}}"),
    ("email", "Assunto: Pedido de suporte #7802\n\nBoa tarde,\n\nChamo-me {{name}} e sou sócio n.º {{member_id}}. "
              "Não consigo entrar com o email {{email}}. Contacto: {{phone}}.\n\nObrigado"),
    ("email", "Caro/a colega,\n\nEnvio em anexo o processo de {{name2}}, {{mrn_cue}} {{mrn}}, para marcação de "
              "consulta.\n\nCumprimentos,\n{{name}}"),
    ("form", "FICHA DE INSCRIÇÃO\nNome completo: {{name}}\nN.º de passaporte: {{passport}}\nMorada: {{address}}\n"
             "Telemóvel: {{phone}}"),
    ("log", '2025-07-01 09:00:12 INFO rh.sync colaborador={{employee_id}} nome="{{name}}" email={{email}}'),
    ("json", '{"utilizador": {"nome": "{{name|json}}", "nif": "{{national_id}}", "palavra_passe": '
             '"{{password|json}}"}}'),
    ("yaml", "colaborador:\n  numero: \"{{employee_id}}\"\n  nome: {{name}}\n  morada: \"{{address|json}}\""),
]  # fmt: skip
_ANY = [
    ("json", '{"event": "signup", "payload": {"firstName": "{{first|json}}", "lastName": "{{last|json}}", '
             '"email": "{{email}}", "mobile": "{{phone}}"}}'),
    ("json", '[{"id": "{{member_id}}", "holder": "{{name|json}}", "acct": "{{account}}"}, {"id": null}]'),
    ("json", '{"traveller": {"name": "{{name|json}}", "document": {"type": "P", "number": "{{passport}}"}}, '
             '"contact": "{{email}}"}'),
    ("json", '{"auth": {"type": "bearer", "token": "{{bearer}}"}, "baseUrl": "https://{{host}}/api"}'),
    ("json", '{"records": [{"mrn": "{{mrn}}", "patient": "{{name|json}}", "nok": "{{name2|json}}", '
             '"nok_phone": "{{phone}}"}]}'),
    ("json", '{"kyc": {"fullName": "{{name|json}}", "taxId": "{{national_id}}", "dob": "1988-02-11", '
             '"status": "pending"}}'),
    ("yaml", "# docker-compose.override.yml\nservices:\n  db:\n    environment:\n      POSTGRES_USER: {{user}}\n"
             "      POSTGRES_PASSWORD: \"{{password|json}}\""),
    ("yaml", "employee:\n  id: {{employee_id}}\n  name: {{name}}\n  email: {{email}}\n  home: \"{{address|json}}\""),
    ("yaml", "aws:\n  access_key_id: {{aws_key_id}}\n  secret_access_key: \"{{aws_secret}}\"\n"
             "  region: eu-central-1"),
    ("yaml", "slack:\n  bot_token: \"{{api_key}}\"\n  channel: '#alerts'"),
    ("log", '{"ts":"2025-06-02T14:03:11Z","level":"info","msg":"password reset requested","user":"{{email}}",'
            '"ip":"{{ip}}"}'),
    ("log", "2025-06-02 14:03:11 [worker-3] DEBUG redis: connecting to {{host}}:6379 with AUTH "
            "{{password|plain}}"),
    ("log", '10.0.3.7 - - [02/Jun/2025:14:03:11 +0000] "GET /reset?token={{token}}&uid={{student_id}} HTTP/1.1" '
            "200 512"),
    ("log", "E0602 14:03:11.442  1337 notify.go:88] failed to deliver sms to {{phone}} for {{name}}: carrier "
            "timeout"),
    ("log", "audit user=admin action=export_payroll emp={{employee_id}} acct={{account}} rows=1"),
    ("code", 'const client = twilio(process.env.TWILIO_SID, "{{token}}");\n'
             'await client.messages.create({ to: "{{phone}}", body: "Hi {{first|json}}, your parcel is on its '
             'way" });'),
    ("code", "curl https://{{host}}/v1/charges \\\n  -u {{api_key}}: \\\n  -d amount=2000 -d currency=eur"),
    ("code", 'import smtplib\n\nserver = smtplib.SMTP_SSL("{{host}}", 465)\n'
             'server.login("{{email}}", "{{password|py}}")'),
    ("code", "INSERT INTO customers (full_name, email, phone, address) VALUES ('{{name|sql}}', '{{email}}', "
             "'{{phone}}', '{{address|sql}}');"),
    ("code", '[database]\nurl = "postgresql://{{user}}:{{password|url}}@{{host}}:5432/app"\n\n[admin]\n'
             'name = "{{name|json}}"\nemail = "{{email}}"'),
    ("code", "[default]\naws_access_key_id = {{aws_key_id}}\naws_secret_access_key = {{aws_secret}}"),
    ("code", "ssh deploy@{{host}} \"echo '{{password|sh}}' | sudo -S systemctl restart app\""),
    ("code", 'def make_student():\n    return Student(number="{{student_id}}", name="{{name|py}}", '
             'passport="{{passport}}")'),
    ("code", 'fetch("https://{{host}}/graphql", {\n  method: "POST",\n  headers: { Authorization: "Basic '
             '{{basic}}" },\n  body: JSON.stringify({ query, variables: { memberId: "{{member_id}}" } }),\n});'),
    ("code", "# .env.local\nGITHUB_TOKEN={{api_key}}\nSESSION_SECRET={{token}}\nADMIN_EMAIL={{email}}"),
    ("code", 'PATIENT = {\n    "mrn": "{{mrn}}",\n    "name": "{{name|py}}",\n    "gp_phone": "{{phone}}",\n}'),
]  # fmt: skip


_BY_LANGUAGE = {"en": _EN, "es": _ES, "fr": _FR, "de": _DE, "it": _IT, "nl": _NL, "pt": _PT, "any": _ANY}
FRESH_TEMPLATES: tuple[Template, ...] = tuple(
    t for lang, rows in _BY_LANGUAGE.items() for t in numbered(lang, rows, fresh=True)
)
