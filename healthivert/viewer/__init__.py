"""The review viewer's Streamlit pages: ``app.py`` is the script ``healthivert view`` runs,
``ui_*`` its parts (study list, navigation, study page, review and export). The library code
they show lives in :mod:`healthivert.review`; nothing in the library imports this package."""
