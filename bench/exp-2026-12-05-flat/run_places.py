"""bench/prompt_sensitivity.py with tiles that know their place (places_patch)."""
import os, runpy, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import places_patch
places_patch.install()
sys.argv = ["bench/prompt_sensitivity.py"] + sys.argv[1:]
runpy.run_path("bench/prompt_sensitivity.py", run_name="__main__")
