"""Reading DICOM, manifests and lesion crops: everything between a folder of files and a CropSet."""
