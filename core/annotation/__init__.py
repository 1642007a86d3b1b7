"""The expert's lesion marks: their geometry, agreement between annotators, and DICOM SEG / NIfTI
masks in and out."""
