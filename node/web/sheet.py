"""The printed sheet in the web view: ``/ref`` finds an annonce by its short code,
``/feuille`` serves the sheet as a PDF.

``/ref?code=K7P3M`` is for anyone holding the sheet (a resident, a volunteer
at the desk): every annonce of that code, the open ones linked, the others
said in words (pourvue, retirée, expirée); a code that cannot be one, or
that names nothing, is said so next to the form. ``/feuille?commune=47001``
is the sheet of those communes (node/sheet.py makes and keeps it).
"""

from __future__ import annotations

from aiohttp import web

from node import sheet
from node.errors import TooManyRequests
from node.i18n import Msg
from node.keys import communes_key
from node.web.labels import CATEGORY_LABELS, KIND_BADGES
from node.web.middleware import error_page
from node.web.render import render
from protocol.errors import ValidationError
from protocol.short_code import MAX_TYPED_CHARS, BadShortCode

routes = web.RouteTableDef()

# ?commune= values read at most; more is refused before any other work.
MAX_COMMUNE_PARAMS = 100
SHEET_MAX_AGE_S = sheet.SHEET_CACHE_S

BAD_CODE = {
    "empty": Msg("Tapez la réf. de l'annonce : 5 chiffres ou lettres, par exemple K7P3M."),
    "too-long": Msg("C'est trop long pour une réf. : elle a 5 chiffres ou lettres, par exemple K7P3M."),
    "symbol": Msg("Une réf. n'a que des chiffres et des lettres sans accent, par exemple K7P3M : vérifiez ce qui est écrit sur la feuille."),
    "length": Msg("Une réf. a 5 chiffres ou lettres, par exemple K7P3M : vérifiez qu'il n'en manque pas."),
}  # fmt: skip
STATUS_TEXTS = {
    sheet.OPEN: Msg("Vous pouvez y répondre."),
    sheet.FULFILLED: Msg("Cette annonce est pourvue : son auteur a trouvé ce qu'il cherchait, ou ce qui était proposé a trouvé preneur."),
    sheet.WITHDRAWN: Msg("Cette annonce a été retirée par son auteur : elle n'est plus proposée."),
    sheet.EXPIRED: Msg("Cette annonce a expiré : sa durée de publication est passée."),
}  # fmt: skip


@routes.get("/ref")
async def ref_page(request: web.Request) -> web.Response:
    typed = request.query.get("code")
    context = {"typed": "", "code": None, "matches": [], "error": None, "nav": "ref",
               "statuses": STATUS_TEXTS, "kinds": KIND_BADGES, "categories": CATEGORY_LABELS,
               "communes": request.app[communes_key], "max_chars": MAX_TYPED_CHARS}  # fmt: skip
    if typed is None:
        return await render(request, "ref.html", context)
    context["typed"] = typed[:MAX_TYPED_CHARS]
    try:
        code, matches = await sheet.find_code(request.app, typed)
    except BadShortCode as bad:
        context["error"] = BAD_CODE[bad.reason]
        return await render(request, "ref.html", context, status=400)
    context.update(code=code, matches=matches)
    return await render(request, "ref.html", context, status=200 if matches else 404)


@routes.get("/feuille")
async def sheet_pdf(request: web.Request) -> web.StreamResponse:
    asked = request.query.getall("commune", [])
    if len(asked) > MAX_COMMUNE_PARAMS:
        return await _bad_communes(request, Msg("Trop de communes demandées à la fois."))
    asked = [code for code in asked if code.strip()]  # « Toutes les communes » sends ""
    try:
        made = await sheet.make_sheet(request.app, asked)
    except ValidationError:
        return await _bad_communes(request, Msg("Cette commune n'est pas une commune de l'agglomération : choisissez-la dans la liste de la page « À propos »."))  # fmt: skip
    except TooManyRequests as busy:
        response = await error_page(request, 429, title=Msg("La feuille est en préparation"),
                                    text=Msg("Beaucoup de feuilles sont demandées en ce moment : réessayez dans quelques secondes."))  # fmt: skip
        response.headers["Retry-After"] = str(busy.retry_after)
        return response
    return web.Response(body=made.pdf, content_type="application/pdf", headers={
        "Content-Disposition": 'inline; filename="feuille-du-quartier.pdf"',
        "Cache-Control": f"public, max-age={SHEET_MAX_AGE_S}",
    })  # fmt: skip


async def _bad_communes(request: web.Request, text: Msg) -> web.Response:
    return await error_page(request, 400, title=Msg("Feuille impossible à préparer"), text=text)
