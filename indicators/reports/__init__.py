"""城市运行分析报告 (issue #17 item 5): gathered once (collect.py), worded once (text.py), typeset
as PDF (pdf.py), DOCX (docx.py) and XLSX (xlsx.py), archived (archive.py)."""
