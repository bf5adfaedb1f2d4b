"""The official matting metrics and scoring folders of predicted mattes against ground truth."""
