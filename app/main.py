"""The HealthiVert review viewer's Streamlit entry in a source checkout:
``streamlit run app/main.py -- --results RESULTS_DIR``. The viewer itself ships in the package
(``healthivert/viewer/``; ``healthivert view`` runs ``healthivert/viewer/app.py``)."""

from healthivert.viewer.app import main

if __name__ == "__main__":  # not when a spawned process re-imports this file as __mp_main__
    main()
