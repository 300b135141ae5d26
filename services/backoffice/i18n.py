"""The workspace's words, French first and English second: one entry per key, (French, English)."""

from collections.abc import Callable

from shared.contracts import IMPROVEMENT_LABELS, PROFILE_LABELS, ImprovementKind, Profile

LANGUAGES = ("fr", "en")
MESSAGES: dict[str, tuple[str, str]] = {
    "service": ("Espace de travail de la consultation", "Consultation workspace"),
    "tagline": ("Ministère de la Culture — données ouvertes", "Ministry of Culture — open data"),
    "footer": (
        "Espace réservé aux agents qui conduisent la consultation.",
        "For the staff who run the consultation only.",
    ),
    "menu": ("Menu", "Menu"),
    "close_menu": ("Fermer", "Close"),
    "main_menu": ("Menu principal", "Main menu"),
    "other_language": ("English", "Français"),
    "sign_out": ("Se déconnecter", "Sign out"),
    "signed_in_as": ("Connecté·e en tant que", "Signed in as"),
    "signin_title": ("Connexion à l'espace de travail", "Sign in to the workspace"),
    "signin_intro": (
        "Cet espace est réservé aux agents du ministère qui conduisent la consultation.",
        "This space is for the ministry's staff who run the consultation.",
    ),
    "username": ("Identifiant", "User name"),
    "password": ("Mot de passe", "Password"),
    "sign_in": ("Se connecter", "Sign in"),
    "signin_refused": ("Identifiant ou mot de passe incorrect.", "Wrong user name or password."),
    "signin_throttled": (
        "Trop de tentatives échouées. Réessayez après {until}.",
        "Too many failed attempts. Try again after {until}.",
    ),
    "signin_session_expired": (
        "Connectez-vous pour accéder à cette page.",
        "Sign in to reach this page.",
    ),
    "forbidden_title": ("Action refusée", "Action refused"),
    "forbidden_csrf": (
        "Le formulaire a expiré ou ne vient pas de cet espace. Rechargez la page et recommencez.",
        "The form expired or does not come from this workspace. Reload the page and try again.",
    ),
    "not_found": ("Page introuvable", "Page not found"),
    "unavailable": ("Service momentanément indisponible", "Service temporarily unavailable"),
    "consultations": ("Consultations", "Consultations"),
    "journal": ("Journal des actions", "Audit log"),
    "new_consultation": ("Créer une consultation", "Create a consultation"),
    "no_consultation": ("Aucune consultation pour l'instant.", "No consultation yet."),
    "title": ("Titre", "Title"),
    "identifier": ("Identifiant", "Identifier"),
    "identifier_hint": (
        "Lettres minuscules, chiffres et tirets ; il apparaît dans les adresses et ne change plus.",
        "Lower-case letters, digits and hyphens; it appears in addresses and never changes.",
    ),
    "description": ("Description", "Description"),
    "description_hint": ("Présentée aux répondants en tête du questionnaire.", "Shown to respondents above the form."),
    "opens_at": ("Ouverture", "Opens"),
    "closes_at": ("Clôture", "Closes"),
    "time_hint": ("Date et heure de Paris.", "Date and time in Paris."),
    "public_rankings": (
        "Classements en direct publics pendant la consultation",
        "Live rankings public while the consultation is open",
    ),
    "public_rankings_hint": (
        "Sinon, et toujours après la clôture jusqu'à la publication des résultats, ils sont réservés aux agents.",
        "Otherwise, and always after the close until the results are published, they are for staff only.",
    ),
    "window": ("Période", "Window"),
    "status": ("Statut", "Status"),
    "actions": ("Actions", "Actions"),
    "status_upcoming": ("À venir", "Upcoming"),
    "status_open": ("Ouverte", "Open"),
    "status_closed": ("Close", "Closed"),
    "status_results": ("Résultats émis", "Results emitted"),
    "public_from": ("publics le {date}", "public from {date}"),
    "public_form": ("Questionnaire public", "Public form"),
    "results": ("Résultats", "Results"),
    "edit": ("Modifier", "Edit"),
    "close_early": ("Clôturer", "Close"),
    "save": ("Enregistrer", "Save"),
    "cancel": ("Annuler", "Cancel"),
    "create": ("Créer", "Create"),
    "edit_title": ("Modifier la consultation", "Edit the consultation"),
    "form_errors": ("Le formulaire contient des erreurs", "The form has errors"),
    "close_title": ("Clôturer la consultation maintenant ?", "Close the consultation now?"),
    "close_explained": (
        "Dès la confirmation, le questionnaire refuse toute nouvelle réponse. Les résultats sont calculés "
        "lorsque toutes les réponses reçues avant cet instant sont comptées. Cette action ne peut pas être annulée.",
        "Once confirmed, the form refuses every new response. The results are computed once every response "
        "received before this instant is counted. This cannot be undone.",
    ),
    "close_confirm": ("Confirmer la clôture", "Confirm the closing"),
    "closed_notice": ("La consultation est close.", "The consultation is closed."),
    "saved_notice": ("La consultation est enregistrée.", "The consultation is saved."),
    "priorities": ("Priorités en direct", "Live priorities"),
    "contributions": ("Ce qu'ils ont écrit", "What they wrote"),
    "profile": ("Profil", "Profile"),
    "all_profiles": ("Tous les profils", "All profiles"),
    "filter": ("Filtrer", "Filter"),
    "participation": ("Participation", "Participation"),
    "respondents": ("Répondants", "Respondents"),
    "respondents_total": ("{n} répondants", "{n} respondents"),
    "by_profile": ("Par profil", "By profile"),
    "by_day": ("Par jour", "By day"),
    "day": ("Jour", "Day"),
    "new_respondents": ("Nouveaux répondants", "New respondents"),
    "cumulative": ("Cumul", "Running total"),
    "days_table": ("Le détail jour par jour", "Day by day"),
    "chart_of": ("Graphique : {what}", "Chart: {what}"),
    "to_open": ("À ouvrir", "To open"),
    "to_improve": ("À améliorer", "To improve"),
    "suggestions": ("Absents du catalogue", "Missing from the catalogue"),
    "rank": ("Rang", "Rank"),
    "rank_interval": ("Intervalle à {level} %", "{level} % interval"),
    "too_close": ("trop proche", "too close to call"),
    "too_close_note": (
        "Intervalle de rang : rééchantillonnage des répondants ({resamples} tirages, en direct). Des lignes voisines "
        "dont les intervalles se chevauchent sont trop proches pour être départagées.",
        "Rank interval: a bootstrap over respondents ({resamples} resamples, live). Neighbouring rows whose "
        "intervals overlap are too close to call.",
    ),
    "other_weights": ("Rang avec d'autres poids", "Rank under other weights"),
    "equal_weights": ("égaux", "equal"),
    "essential_only": ("« essentiel » seul", '"essential" only'),
    "dataset": ("Jeu de données", "Dataset"),
    "score": ("Score", "Score"),
    "by_priority": ("Par priorité", "By priority"),
    "improvements": ("Améliorations demandées", "Improvements asked for"),
    "group": ("Groupe de suggestions", "Suggestion group"),
    "no_rows": ("Aucune demande pour l'instant.", "No request yet."),
    "live_status": ("Mis à jour à {time}", "Updated at {time}"),
    "live_hint": (
        "Les classements se mettent à jour d'eux-mêmes ; sans JavaScript, rechargez la page.",
        "The rankings update by themselves; without JavaScript, reload the page.",
    ),
    "weights": ("Pondération des priorités", "Weights of the priorities"),
    "open_status": ("ouvert", "open"),
    "not_open_status": ("non ouvert", "not open"),
    "essential": ("essentiel", "essential"),
    "important": ("important", "important"),
    "useful": ("utile", "useful"),
    "view_improvements": ("Commentaires d'amélioration", "Improvement comments"),
    "view_suggestions": ("Suggestions de jeux absents", "Suggested missing datasets"),
    "view_platform": ("Avis sur la plateforme", "Platform feedback"),
    "search": ("Rechercher", "Search"),
    "search_words": ("Mots recherchés", "Words"),
    "search_hint": ("Accents et majuscules ignorés.", "Accents and capitals are ignored."),
    "kind": ("Type d'amélioration", "Kind of improvement"),
    "all_kinds": ("Tous les types", "All kinds"),
    "all_datasets": ("Tous les jeux de données", "All datasets"),
    "export_csv": ("Exporter en CSV", "Export as CSV"),
    "results_count": ("{n} résultat(s)", "{n} result(s)"),
    "nothing_found": ("Rien ne correspond à cette recherche.", "Nothing matches this search."),
    "suggested_title": ("Titre saisi", "Title as typed"),
    "holder": ("Détenteur", "Holder"),
    "satisfaction": ("Satisfaction", "Satisfaction"),
    "satisfaction_hint": ("1 = pas du tout satisfait, 5 = tout à fait", "1 = not at all satisfied, 5 = fully"),
    "answers": ("Réponses", "Answers"),
    "average": ("Moyenne : {value} sur 5 ({n} réponses)", "Average: {value} out of 5 ({n} answers)"),
    "comments": ("Commentaires", "Comments"),
    "comment": ("Commentaire", "Comment"),
    "pagination": ("Pagination", "Pagination"),
    "first_page": ("Première page", "First page"),
    "previous_page": ("Page précédente", "Previous page"),
    "next_page": ("Page suivante", "Next page"),
    "last_page": ("Dernière page", "Last page"),
    "page_n": ("Page {n}", "Page {n}"),
    "when": ("Date", "Date"),
    "who": ("Agent", "Staff member"),
    "what": ("Action", "Action"),
    "target": ("Objet", "Target"),
    "detail": ("Détail", "Detail"),
    "no_entry": ("Aucune action enregistrée.", "No action recorded."),
    "consultation_nav": ("Pages de la consultation", "Pages of the consultation"),
    "unknown_consultation": ("Cette consultation n'existe pas.", "This consultation does not exist."),
    "signed_in": ("connexion", "sign-in"),
    "signed_out": ("déconnexion", "sign-out"),
    "consultation.create": ("création de consultation", "consultation created"),
    "consultation.edit": ("modification de consultation", "consultation edited"),
    "consultation.close": ("clôture anticipée", "early close"),
    "texts.export": ("export des contributions", "texts exported"),
    "signin.refused": ("connexion refusée", "sign-in refused"),
    "commitment.create": ("engagement pris", "commitment made"),
    "commitment.update": ("engagement modifié", "commitment changed"),
    "commitment.done": ("engagement tenu (catalogue)", "commitment done (catalogue)"),
    "excerpt.approve": ("extrait approuvé", "excerpt approved"),
    "excerpt.withdraw": ("extrait retiré", "excerpt withdrawn"),
    "commitments": ("Engagements", "Commitments"),
    "commitments_intro": (
        "Ce que le ministère s'engage à faire après la consultation. Ces engagements sont publiés avec les "
        "résultats et suivis jusqu'à leur réalisation ; un jeu de données ouvert dans le catalogue rend "
        "l'engagement de l'ouvrir tenu, sans action de votre part.",
        "What the ministry commits to do after the consultation. These commitments are published with the "
        "results and followed until done; a dataset that opens in the catalogue fulfils the commitment to "
        "open it, with no action on your part.",
    ),
    "no_commitment": (
        "Aucun engagement pour l'instant : prenez-en un depuis une ligne des priorités.",
        "No commitment yet: make one from a row of the priorities.",
    ),
    "commit": ("S'engager", "Commit"),
    "new_commitment": ("Nouvel engagement", "New commitment"),
    "edit_commitment": ("Modifier l'engagement", "Edit the commitment"),
    "commitment_kind": ("Type d'engagement", "Kind of commitment"),
    "kind_open": ("Ouvrir", "Open"),
    "kind_improve": ("Améliorer", "Improve"),
    "kind_add": ("Ajouter au catalogue", "Add to the catalogue"),
    "service_in_charge": ("Service chargé", "Service in charge"),
    "service_hint": ("Repris du recensement quand il le dit.", "Taken from the census where it says."),
    "deadline": ("Échéance", "Target"),
    "deadline_hint": ("Un trimestre (2027-T2) ou une date (2027-06-30).", "A quarter (2027-T2) or a day (2027-06-30)."),
    "commitment_status": ("Statut", "Status"),
    "cstatus_planned": ("Prévu", "Planned"),
    "cstatus_in_progress": ("En cours", "In progress"),
    "cstatus_done": ("Réalisé", "Done"),
    "cstatus_dropped": ("Abandonné", "Dropped"),
    "note_fr": ("Note publique (français)", "Public note (French)"),
    "note_en": ("Note publique (anglais, facultatif)", "Public note (English, optional)"),
    "reason": ("Raison publique de l'abandon", "Public reason for dropping"),
    "reason_hint": ("Obligatoire si l'engagement est abandonné.", "Required when the commitment is dropped."),
    "done_url": ("Lien vers le jeu de données", "Link to the dataset"),
    "done_url_hint": ("Quand l'engagement est réalisé.", "When the commitment is done."),
    "history": ("Historique", "History"),
    "excerpts": ("Extraits approuvés pour publication", "Excerpts approved for publication"),
    "no_excerpt": (
        "Aucun extrait approuvé : rien de ce que les répondants ont écrit ne sera publié.",
        "No excerpt approved: nothing respondents wrote will be published.",
    ),
    "propose_excerpt": ("Publier un extrait", "Publish an excerpt"),
    "excerpt_title": ("Approuver un extrait pour publication", "Approve an excerpt for publication"),
    "excerpt_hint": (
        "Retirez tout ce qui pourrait identifier une personne (nom, adresse, organisation, détail personnel) "
        "avant d'approuver. Seul le texte ci-dessous sera publié, avec les résultats.",
        "Remove anything that could identify a person (name, address, organisation, personal detail) before "
        "approving. Only the text below will be published, with the results.",
    ),
    "excerpt_text": ("Texte publié", "Published text"),
    "approve": ("Approuver pour publication", "Approve for publication"),
    "withdraw": ("Retirer", "Withdraw"),
    "original_text": ("Texte d'origine", "Original text"),
    "approved_notice": ("L'extrait est approuvé pour publication.", "The excerpt is approved for publication."),
    "withdrawn_notice": (
        "L'extrait est retiré : il ne sera pas publié.",
        "The excerpt is withdrawn: it will not be published.",
    ),
    "commitment_saved": ("L'engagement est enregistré.", "The commitment is saved."),
    "clusters": ("Réponses suspectes", "Suspect responses"),
    "clusters_intro": (
        "La détection signale les grappes de réponses qui ressemblent à une même main répondant plusieurs fois : "
        "rafales depuis un même réseau, réponses presque identiques en peu de temps, formulaires remplis trop vite. "
        "Elle ne décide rien : écartez une grappe (elle sort du classement filtré, publié) ou conservez-la, avec une "
        "raison publiée avec les résultats. Les décisions se prennent jusqu'à la clôture.",
        "Detection flags clusters of responses that look like one hand answering many times: bursts from one "
        "network, nearly identical answers in a short time, forms filled too fast. It decides nothing: exclude a "
        "cluster (it leaves the filtered ranking, the one published) or keep it, with a reason published with the "
        "results. Decisions are taken until the close.",
    ),
    "no_cluster": ("Aucune grappe signalée pour l'instant.", "No cluster flagged so far."),
    "detection_settings": ("Seuils de détection", "Detection thresholds"),
    "settings_burst": (
        "Rafale : {n} nouveaux répondants d'un même réseau en {s} s",
        "Burst: {n} new respondents from one network within {s} s",
    ),
    "settings_same": (
        "Mêmes réponses : {n} répondants en {s} s, similarité ≥ {j}, {l} fois plus fréquentes qu'ailleurs",
        "Same answers: {n} respondents within {s} s, similarity ≥ {j}, {l} times as common as elsewhere",
    ),
    "settings_fast": (
        "Formulaires trop rapides : {n} d'un même réseau en moins de {s} s",
        "Too-fast forms: {n} from one network in under {s} s",
    ),
    "detection_read": (
        "Détection sur {n} répondants comptés, reçus jusqu'ici",
        "Detection over {n} counted respondents, received so far",
    ),
    "excluded_now": ("Répondants écartés : {n}", "Respondents excluded: {n}"),
    "cluster": ("Grappe", "Cluster"),
    "signals": ("Signaux", "Signals"),
    "signal_network_burst": ("rafale d'un réseau", "network burst"),
    "signal_same_answers": ("mêmes réponses", "same answers"),
    "signal_fast_fill": ("formulaires trop rapides", "too-fast forms"),
    "cluster_size": ("Répondants", "Respondents"),
    "cluster_span": ("Période", "Span"),
    "cluster_networks": ("Réseaux", "Networks"),
    "cluster_fill": ("Remplissage médian", "Median fill time"),
    "cluster_pushes": ("Ce qu'elle demande", "What it asks for"),
    "decision": ("Décision", "Decision"),
    "decision_none": ("à examiner", "to review"),
    "decision_exclude": ("écartée", "excluded"),
    "decision_clear": ("conservée", "kept"),
    "decided_by": ("par {who} le {at}", "by {who} on {at}"),
    "new_since": ("{n} nouveaux depuis la décision", "{n} new since the decision"),
    "not_detected": ("plus signalée", "no longer flagged"),
    "examine": ("Examiner", "Review"),
    "exclude": ("Écarter", "Exclude"),
    "clear": ("Conserver", "Keep"),
    "decision_reason": ("Raison (publiée avec les résultats)", "Reason (published with the results)"),
    "decision_reason_hint": (
        "Ni nom, ni adresse, ni réseau : la raison est publique.",
        "No name, address or network: the reason is public.",
    ),
    "decisions_closed": (
        "La consultation est close : les décisions ne changent plus.",
        "The consultation is closed: decisions no longer change.",
    ),
    "response_ids": ("Réponses comptées (identifiants internes)", "Counted responses (internal ids)"),
    "decision_saved_exclude": (
        "La grappe est écartée du classement filtré.",
        "The cluster is excluded from the filtered ranking.",
    ),
    "decision_saved_clear": ("La grappe est conservée.", "The cluster is kept."),
    "unknown_cluster": ("Cette grappe n'est pas signalée.", "This cluster is not flagged."),
    "unknown_decision": ("Décision inconnue.", "Unknown decision."),
    "invalid_form": ("Formulaire invalide", "Invalid form"),
    "staff.add": ("compte créé", "account created"),
    "staff.disable": ("compte désactivé", "account disabled"),
    "staff.enable": ("compte réactivé", "account enabled"),
}


def translator(lang: str) -> Callable[..., str]:
    """`t(key, **values)` in the language chosen, French when it has no entry."""
    index = 1 if lang == "en" else 0

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][index] if key in MESSAGES else key
        return text.format(**values) if values else text

    return t


def profile_label(profile: str, lang: str) -> str:
    return PROFILE_LABELS[Profile(profile)][1 if lang == "en" else 0]


def improvement_label(kind: str, lang: str) -> str:
    return IMPROVEMENT_LABELS[ImprovementKind(kind)][1 if lang == "en" else 0]
