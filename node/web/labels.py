"""Names shown to residents for the protocol's values (French message ids)."""

from __future__ import annotations

from protocol.annonce import Category, Kind, State

CATEGORY_LABELS = {
    Category.SERVICE.value: "Service",
    Category.SAVOIR_FAIRE.value: "Savoir-faire",
    Category.OBJET.value: "Objet à donner ou à prêter",
    Category.SORTIE.value: "Sortie",
    Category.COUP_DE_MAIN.value: "Coup de main",
}
KIND_LABELS = {Kind.OFFER.value: "Je propose", Kind.REQUEST.value: "Je cherche"}
KIND_BADGES = {Kind.OFFER.value: "Offre", Kind.REQUEST.value: "Demande"}
STATE_LABELS = {
    State.OPEN.value: "En cours",
    State.FULFILLED.value: "Pourvue",
    State.WITHDRAWN.value: "Retirée",
}
REPORT_REASONS = {
    "argent": "Demande d'argent ou vente",
    "abus": "Propos injurieux, discriminatoires ou dangereux",
    "arnaque": "Arnaque ou tentative de fraude",
    "illegal": "Contenu illégal",
    "autre": "Autre raison",
}

# What the error summary calls each field (the field's label, or close to it).
FIELD_NAMES = {
    "type": "Vous proposez ou vous cherchez ?",
    "categorie": "Catégorie",
    "titre": "Titre de l'annonce",
    "texte": "Description",
    "commune": "Où ?",
    "duree": "Durée de publication",
    "sortie_date": "Date de la sortie",
    "sortie_heure": "Heure de la sortie",
    "photos": "Photos",
    "photo_1": "Photo 1",
    "photo_2": "Photo 2",
    "photo_3": "Photo 3",
    "photo_4": "Photo 4",
    "photo_1_description": "Description de la photo 1",
    "photo_2_description": "Description de la photo 2",
    "photo_3_description": "Description de la photo 3",
    "photo_4_description": "Description de la photo 4",
    "nom": "Nom affiché",
    "presentation": "Quelques mots sur vous",
    "competences": "Vos savoir-faire et centres d'intérêt",
    "domicile": "Mon domicile",
    "travail": "Mon lieu de travail",
    "message": "Votre message",
    "raison": "Raison du signalement",
    "details": "Précisions",
    "identifiant": "Identifiant de connexion",
    "mot_de_passe": "Mot de passe",
    "confirmation": "Confirmation du mot de passe",
    "actuel": "Mot de passe actuel",
    "nouveau": "Nouveau mot de passe",
    "charte": "Charte de Troc",
}

ERROR_TITLES = {
    400: "La demande est incomplète",
    403: "Action refusée",
    404: "Page introuvable",
    410: "Cette page n'est plus en ligne",
    405: "Action impossible",
    413: "Envoi trop volumineux",
    409: "Action impossible pour l'instant",
    429: "Trop de tentatives",
    500: "Une erreur est survenue",
    503: "Service très occupé",
}
ERROR_TEXTS = {
    400: "Le formulaire envoyé est incomplet. Revenez en arrière et réessayez.",
    403: "Cette action ne vous est pas permise, ou le formulaire a expiré. Rechargez la page et réessayez.",
    404: "Cette page n'existe pas ou plus. L'annonce a peut-être été retirée ou a expiré.",
    410: "Ce que vous cherchez a été retiré.",
    405: "Cette action n'est pas possible ici.",
    413: "Ce que vous avez envoyé est trop volumineux.",
    409: "Cette action n'est pas possible pour l'instant. Revenez en arrière et réessayez plus tard.",
    429: "Trop de tentatives en peu de temps. Patientez quelques minutes avant de réessayer.",
    500: "Le service n'a pas pu traiter votre demande. Réessayez dans un instant.",
    503: "Le service est très occupé en ce moment. Réessayez dans quelques secondes : rien de ce que vous avez envoyé n'a été enregistré.",
}  # fmt: skip
