#!/usr/bin/env python3
"""Validation, render and thumbnail time and peak memory of the document corpus, one file at a
time through `media-dev process --repeat 7` (the process function's pipeline, exactly), with
/usr/bin/time for the peak RSS. Extra files (a 50 MB CSV, a large PDF) can be named on the
command line. Prints a Markdown table.

    cargo build --release -p media-dev && python3 bench/documents.py [FILE...]
"""
import json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = os.path.join(ROOT, 'tests/documents') + '/'
BIN = os.path.join(ROOT, 'target/release/media-dev')
files=[("pdfjs-tracemonkey.pdf",None),("pdfjs-basicapi.pdf",None),("pdfjs-alphatrans.pdf",None),("pypdf-crazyones.pdf",None),
 ("pypdf-r6-user-password.pdf",None),("pdfjs-js-authors.pdf",None),("poi-sample.docx",None),("poi-SampleSS.xlsx",None),("poi-SampleShow.pptx",None),
 ("gen-nested-1.zip",None),("gen-bomb-entries.zip",None),("gen-bomb-overlap.zip",None),("gen-bomb-ratio.zip",None),
 ("datasets-country-list.csv",None),("pypdf-crazyones.txt",None)]
extra=[f for f in sys.argv[1:]]
print("| file | bytes | outcome | median ms (min) | validate ms | render ms | thumbnails ms | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|")
for f,_ in files+[(e,None) for e in extra]:
    path=f if f.startswith('/') else D+f
    r=subprocess.run(["/usr/bin/time","-f","%M",BIN,"process",path,"--repeat","7"],capture_output=True,text=True)
    rss=int(r.stderr.strip().splitlines()[-1])/1024
    j=json.loads(r.stdout)
    t=j.get("timing",{})
    lr=t.get('lastRun',{})
    outcome=j.get("status") if j.get("status")=="ready" else "rejected:"+(j.get("rejection") or {}).get("code","?")
    print(f"| {os.path.basename(f)} | {os.path.getsize(path)} | {outcome} | {t.get('medianMs')} ({t.get('minMs')}) | {lr.get('inspectMs','-')} | {lr.get('decodeMs','-')} | {round((lr.get('resizeMs') or 0)+(lr.get('encodeMs') or 0),1)} | {rss:.0f} |")
